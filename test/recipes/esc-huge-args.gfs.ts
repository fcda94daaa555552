// Sixty concurrent calls, each with a 20 MB argument: every one is copied to the host.
import type { RecipeContext } from 'guestsh';
export default async ({ g }: RecipeContext) => {
  const big = 'x'.repeat(20_000_000);
  await Promise.all(Array.from({ length: 60 }, (_, i) => g.write(`/huge-${i}`, big)));
  return 'wrote 1.2 GB';
};
