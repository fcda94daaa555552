import type { RecipeContext } from 'guestsh';

export default async ({ g }: RecipeContext) => {
  await g.write('/etc/should-not-stay', 'x');
  await g.cat('/no/such/file');
};
