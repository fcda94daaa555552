// The customize step of build-and-sysprep.pkr.hcl: a hostname and a message
// of the day saying how the image was made.
//
//   guestsh run --packer -i customize.gfs.ts --param hostname=NAME
import type { RecipeContext } from 'guestsh';
import { hostname, write } from 'guestsh/customize';

export default async ({ g, params, log }: RecipeContext) => {
  const ctx = { g, log };
  return [
    ...(await hostname(ctx, params.hostname ?? 'packer-built')),
    ...(await write(ctx, '/etc/motd', 'Built by Packer, prepared by guestsh.\n')),
  ];
};
