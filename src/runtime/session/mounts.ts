// Putting a set of mounts back: after a rollback, a session restart, a
// watch-mode run, or a comparison that had to unmount. One helper, so every
// caller mounts parents before the filesystems under them the same way.

import type { GuestfsApi } from '../../spec/api.generated.js';

/** A mounted filesystem: what is mounted, and where. */
export interface Mount {
  device: string;
  mountpoint: string;
}

/**
 * Shortest mountpoint first, ties in their given order (a stable sort, as
 * guestfish's -i sorts by length): `/` before `/boot` before `/boot/efi`.
 */
export function parentsFirst<T extends { mountpoint: string }>(mounts: readonly T[]): T[] {
  return [...mounts].sort((a, b) => a.mountpoint.length - b.mountpoint.length);
}

/** What is mounted now, parents first. */
export async function currentMounts(g: Pick<GuestfsApi, 'mountpoints'>): Promise<Mount[]> {
  const byDevice = await g.mountpoints();
  return parentsFirst(Object.entries(byDevice).map(([device, mountpoint]) => ({ device, mountpoint })));
}

/** Mounts each filesystem again where it was, parents first. */
export async function remount(g: Pick<GuestfsApi, 'mount'>, mounts: readonly Mount[]): Promise<void> {
  for (const m of parentsFirst(mounts)) await g.mount(m.device, m.mountpoint);
}
