// Watchdog processes: small `sh` loops that outlive a guestsh process killed
// at any moment (even by SIGKILL). Polls like libguestfs's recovery process.
// While qemu runs: if the owner dies, kill qemu. Then, once the owner is
// gone, remove its run directory. An owner that cleans up itself ends its
// watchdogs with releaseWatchdogs(). A FUSE mount has one too: once the
// owner is gone, it detaches the mount (the kernel has aborted the
// connection with the owner's descriptor, so its users get ENOTCONN until then).

import { type ChildProcess, spawn } from 'node:child_process';

const WATCHDOG = `
owner=$1 qemu=$2 dir=$3
if [ -n "$qemu" ]; then
  while kill -0 "$qemu" 2>/dev/null; do
    kill -0 "$owner" 2>/dev/null || kill -9 "$qemu"
    sleep 0.5
  done
fi
while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
rm -rf "$dir"
`;

const watchdogs = new Map<string, ChildProcess[]>();

/**
 * Starts a watchdog for `runDir` (and `qemuPid`, if given). A session
 * starts one as soon as its run directory exists, so a kill before qemu
 * has started leaves nothing behind either.
 */
export function watchRunDir(runDir: string, qemuPid?: number): void {
  const w = spawn('sh', ['-c', WATCHDOG, 'guestsh-watchdog', String(process.pid), qemuPid === undefined ? '' : String(qemuPid), runDir], {
    detached: true,
    stdio: 'ignore',
  });
  w.unref();
  watchdogs.set(runDir, [...(watchdogs.get(runDir) ?? []), w]);
}

/** Ends the watchdogs of `runDir`: its owner has cleaned up (or is about to). */
export function releaseWatchdogs(runDir: string): void {
  for (const w of watchdogs.get(runDir) ?? []) w.kill('SIGKILL');
  watchdogs.delete(runDir);
}

const MOUNT_WATCHDOG = `
owner=$1 mnt=$2 entry=$3
while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
grep -qF -- "$entry" /proc/mounts && umount -l -n "$mnt"
`;

/** /proc/mounts's escaping of a path (space, tab, newline, backslash as octal). */
const mountsEscape = (path: string): string => path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

/**
 * Starts a watchdog that lazily unmounts `mountpoint` once this process has
 * died, if the mount there is still this process's FUSE mount (source
 * `source`, type `type`): a mount made later by someone else is left alone.
 * Returns the function that ends it (the owner unmounted itself).
 */
export function watchMountpoint(mountpoint: string, source: string, type: string): () => void {
  const entry = `${source} ${mountsEscape(mountpoint)} ${type} `;
  const w = spawn('sh', ['-c', MOUNT_WATCHDOG, 'guestsh-watchdog', String(process.pid), mountpoint, entry], { detached: true, stdio: 'ignore' });
  w.unref();
  return () => void w.kill('SIGKILL');
}
