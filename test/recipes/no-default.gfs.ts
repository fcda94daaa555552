export const notARecipe = 1;
