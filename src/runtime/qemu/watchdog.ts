// Watchdog processes: small `sh` loops that outlive a guestsh process killed
// at any moment (even by SIGKILL). Polls like libguestfs's recovery process.
// While qemu runs: if the owner dies, kill qemu. Then, once the owner is
// gone, remove its run directory. An owner that cleans up itself ends its
// watchdogs with releaseWatchdogs().

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
