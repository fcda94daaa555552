// Prepare a Linux image for cloning: virt-sysprep's default operations,
// plus a new hostname, with a summary of what was removed.
//
//   guestsh run -a disk.qcow2 -i sysprep.gfs.ts --param hostname=template
//   guestsh run -a disk.qcow2 -i sysprep.gfs.ts --dry-run     # see what would change
//   guestsh run sysprep.gfs.ts --help                         # its params
import type { RecipeContext, RecipeParamSpecs } from 'guestsh';
import { sysprep } from 'guestsh/sysprep';
import { hostname } from 'guestsh/customize';

export const params = {
  hostname: { description: 'the new hostname (default: leave it)' },
  keep: { description: 'operations of the default set to skip, comma-separated', type: 'list' },
  users: { description: "also delete login accounts, which the default set leaves alone", values: ['yes', 'no'], default: 'no' },
} satisfies RecipeParamSpecs;

export default async ({ g, params, log }: RecipeContext) => {
  const ctx = { g, log };
  const changes = await sysprep(ctx, {
    disable: params.keep?.split(','),
    enable: params.users === 'yes' ? ['user-account'] : [],
  });
  if (params.hostname) changes.push(...(await hostname(ctx, params.hostname)));

  const byOp = new Map<string, number>();
  for (const c of changes) byOp.set(c.op, (byOp.get(c.op) ?? 0) + 1);
  for (const [op, n] of byOp) log(`${op.padEnd(24)} ${n} change(s)`);
  return changes;
};
