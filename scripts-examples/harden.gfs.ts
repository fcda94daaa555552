// Harden a Linux image: SSH keys-only with strong algorithms, network
// sysctls, tighter permissions on sensitive files. Prints each change with
// its old and new value; running it twice reports nothing the second time.
//
//   guestsh run -a disk.qcow2 -i harden.gfs.ts [--param root=no] [--param authorized-key="ssh-ed25519 AAAA… me"]
import type { RecipeContext, RecipeParamSpecs } from 'guestsh';
import { sshHardening, sysctlHardening, permissionFixes } from 'guestsh/hardening';
import { sshInject } from 'guestsh/customize';

// Checked before anything launches; `guestsh run harden.gfs.ts --help` lists them.
export const params = {
  root: { description: 'whether root may log in over SSH with a key', values: ['yes', 'no'], default: 'yes' },
  'authorized-key': { description: "an SSH public key for root, so someone can still get in once passwords are off" },
} satisfies RecipeParamSpecs;

export default async ({ g, params, log }: RecipeContext) => {
  const ctx = { g, log };
  // Password logins are about to be switched off: make sure someone can still get in.
  if (params['authorized-key']) await sshInject(ctx, 'root', params['authorized-key']);

  const changes = [
    ...(await sshHardening(ctx, { permitRootLogin: params.root === 'no' ? 'no' : 'prohibit-password', extra: { X11Forwarding: 'no', MaxAuthTries: '4' } })),
    ...(await sysctlHardening(ctx)),
    ...(await permissionFixes(ctx)),
  ];
  if (changes.length === 0) log('already hardened: nothing changed');
  for (const c of changes) log(`${c.op}: ${c.path}${c.detail ? `: ${c.detail}` : ''}`);
  return changes;
};
