import type { RecipeContext } from 'guestsh';
import { fail } from './lib/helper.gfs.ts';

export default async (_ctx: RecipeContext) => {
  await Promise.resolve();
  fail('from helper');
};
