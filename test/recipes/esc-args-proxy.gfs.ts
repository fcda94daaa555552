// An argument that claims to be small and is not: a proxy answering a short
// length but handing out a 10 MB string for every element asked for.
import type { RecipeContext } from 'guestsh';
export default async ({ g }: RecipeContext) => {
  const big = 'x'.repeat(10_000_000);
  const lying = new Proxy(['a'], { get: (t, k) => (k === 'length' ? 8 : big) });
  await g.mkdirP(lying as unknown as string);
  return 'passed 80 MB';
};
