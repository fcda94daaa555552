import type { RecipeContext } from 'guestsh';
export default async ({ g }: RecipeContext) => {
  await g.version();
  let i = 0;
  while (true) i++;
};
