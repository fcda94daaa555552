// Reads a whole guest file into the recipe: libguestfs's read_file buffers it on the host first.
import type { RecipeContext } from 'guestsh';
export default async ({ g, params }: RecipeContext) => {
  const data = await g.readFile(params.path ?? '/big');
  return data.length;
};
