// Fixture: throws on a known line (line 8, column 9).
import type { RecipeContext } from 'guestsh';

interface Thing { n: number }

export default async ({ log }: RecipeContext) => {
  const t: Thing = { n: 1 };
  throw new Error(`boom ${t.n}`);
};
