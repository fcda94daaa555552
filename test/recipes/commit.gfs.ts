// Changes the hostname, uploads a file from beside the recipe, downloads one to the output dir.
import type { RecipeContext } from 'guestsh';
import { hostname } from 'guestsh/customize';

export default async ({ g, params, log }: RecipeContext) => {
  const v = await g.version();
  log('version', v);
  await hostname({ g, log }, params.name ?? 'renamed');
  await g.upload('data.txt', '/upload-test');
  await g.download('/etc/hostname', 'hostname.txt');
  return { major: typeof v.major, uploaded: await g.cat('/upload-test') };
};
