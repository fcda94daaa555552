// Test dispatcher: runs the ready recipe guestsh/<params.module> with the other params.
import type { RecipeContext } from 'guestsh';
import customize from 'guestsh/customize';
import sysprep from 'guestsh/sysprep';

const recipes: Record<string, typeof customize> = { customize, sysprep };

export default async ({ g, params, log }: RecipeContext) => {
  const { module, ...rest } = params;
  const recipe = recipes[module!];
  if (!recipe) throw new Error(`no ready recipe guestsh/${module}`);
  return recipe({ g, log, params: rest });
};
