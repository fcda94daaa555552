// Values across the bridge: bigint, buffers, structs, hashtables.
import type { RecipeContext } from 'guestsh';
import { double } from './lib/helper.gfs';
export default async ({ g, params, log }: RecipeContext) => {
  const v = await g.version();
  log('version', v, 'param', params.x);
  return { major: typeof v.major, d: double(21), x: params.x };
};
