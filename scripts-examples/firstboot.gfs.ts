// Things that can only happen on the running machine, scheduled for its
// next boot: regenerate SSH host keys (sysprep removed them), grow the root
// filesystem, and leave a marker. Each script runs once, in order; output
// goes to /var/log/guestsh-firstboot.log in the guest.
//
//   guestsh run -a disk.qcow2 -i firstboot.gfs.ts
import type { RecipeContext } from 'guestsh';
import { addCommand, addScript, status } from 'guestsh/firstboot';

export default async ({ g, log }: RecipeContext) => {
  const ctx = { g, log };
  await addCommand(ctx, 'ssh-keygen -A', { order: 10 });
  await addScript(
    ctx,
    'grow-root',
    `#!/bin/sh
# Grow / to fill its partition when the tools are there (cloud-guest-utils / e2fsprogs).
root=$(findmnt -no SOURCE /) || exit 0
if command -v growpart >/dev/null; then
  disk=/dev/$(lsblk -no PKNAME "$root"); part=$(cat /sys/class/block/\${root#/dev/}/partition)
  growpart "$disk" "$part" && resize2fs "$root"
fi
`,
    { order: 20 },
  );
  await addCommand(ctx, 'date -u > /var/lib/guestsh-first-boot-done', { order: 99 });
  log('pending at next boot:', (await status(ctx)).pending);
};
