// mount_local, mount_local_run, umount_local: the session's filesystems on a
// host directory through guestsh's FUSE server (../../mount/). As in
// libguestfs, mount_local mounts, mount_local_run returns once the mount is
// gone, umount_local unmounts; guestsh serves requests from mount_local on
// (libguestfs only once mount_local_run runs), so a program need not run
// the loop on a thread of its own. shutdown() and close() unmount first.

import { UsageError } from '../../errors.js';
import { LocalMount } from '../../mount/local-mount.js';
import { type LibraryTable, type SessionHost, SessionSlot } from '../host.js';

/** libguestfs's umount_local retry: a few attempts, a second apart. */
const RETRIES = 5;

const current = new SessionSlot<{ mount: LocalMount | null }>(() => ({ mount: null }));

function mounted(s: SessionHost, action: string): LocalMount {
  const m = s.slot(current).mount;
  if (!m) throw new UsageError(`${action}: no filesystem is mounted locally (call mount_local first)`);
  return m;
}

export const mountLocalActions: LibraryTable = {
  mount_local: async (s, localmountpoint, opts) => {
    const slot = s.slot(current);
    if (slot.mount) throw new UsageError(`mount_local: ${slot.mount.mountpoint} is mounted already (umount_local first)`);
    if (s.state !== 'ready') throw new UsageError(`mount_local: launch the appliance first (it is ${s.state})`);
    const m = await LocalMount.mount(s.g, localmountpoint, {
      readonly: opts.readonly,
      options: opts.options,
      cacheTimeoutMs: opts.cachetimeout === undefined ? undefined : opts.cachetimeout * 1000,
      trace: opts.debugcalls ? (line) => process.stderr.write(`guestsh: ${line}\n`) : undefined,
      alive: () => s.state === 'ready',
    });
    slot.mount = m;
    const removeHook = s.beforeEnd(() => m.unmount(RETRIES).catch(() => m.detach()));
    void m.ended.catch(() => undefined).finally(() => {
      removeHook();
      if (slot.mount === m) slot.mount = null;
    });
  },
  mount_local_run: async (s) => {
    await mounted(s, 'mount_local_run').ended;
  },
  umount_local: async (s, opts) => {
    await mounted(s, 'umount_local').unmount(opts.retry ? RETRIES : 0);
  },
};
