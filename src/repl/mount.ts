// `guestsh mount` and `guestsh umount`. The mount runs in the foreground
// until the mountpoint is unmounted (`guestsh umount`, umount(8), or a stop
// signal); then the session commits, or discards with --discard.
//
// Signals: SIGINT and SIGTERM end the mount as an unmount does (a busy
// mountpoint is retried every second, said once), and its changes are
// committed, as guestmount keeps them: programs were told their writes (and
// fsyncs) succeeded. SIGHUP means the terminal or the `guestsh` process
// that started this one is gone (a SIGKILL of `guestsh` arrives as one):
// that is a crash, so the mount is detached at once and the changes are
// discarded, as a SIGKILL of this process itself would leave them.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../runtime/errors.js';
import { BusyError, FS_TYPE, LocalMount, mountAt, unmount } from '../runtime/mount/local-mount.js';
import { openImages } from '../runtime/open/open.js';
import { Session } from '../runtime/session/session.js';
import type { Options } from './options.js';
import { KeyReader, openOptions } from './setup.js';
import type { Stop } from './stop.js';

const say = (line: string): void => void process.stderr.write(`guestsh: ${line}\n`);

export async function mountVerb(o: Options, stop: Stop): Promise<number> {
  const [mountpoint, ...more] = o.operands;
  if (!mountpoint || more.length) throw new UsageError('usage: guestsh mount -a IMAGE (-i | -m DEV[:MNT]) [--ro] [--discard] MOUNTPOINT');
  if (o.drives.length === 0) throw new UsageError('mount: add an image with -a IMAGE');
  if (!o.inspector && o.mounts.length === 0) throw new UsageError("mount: say what to mount: -i (the guest's filesystems as it boots) or -m DEVICE[:MOUNTPOINT]");
  if (process.getuid?.() !== 0) throw new UsageError('mount: guestsh mount needs root (the mount is made with mount(2)); run it as root, or copy files out with copy-out');
  const s = new Session();
  s.on('notice', (l) => say(l));
  if (o.verbose) s.on('console', (l) => process.stderr.write(`${l}\n`));
  Object.assign(s.settings, { verbose: o.verbose || s.settings.verbose });
  if (o.allowBacking) s.settings.backing = 'any';
  // A stop while the images open discards at once.
  const closeEarly = (): void => void s.close();
  stop.signal.addEventListener('abort', closeEarly, { once: true });
  try {
    await openImages(s, { ...openOptions(o, new KeyReader(o)), launch: true });
    stop.signal.throwIfAborted();
    stop.signal.removeEventListener('abort', closeEarly);
    const m = await LocalMount.mount(s.g, mountpoint, { readonly: o.readonly, trace: o.verbose ? (l) => say(l) : undefined });
    const changes = o.readonly ? 'read-only' : o.changes === 'discard' ? 'changes are discarded at the unmount' : 'changes are committed at the unmount';
    say(`mounted on ${m.mountpoint} (${changes}); unmount with 'guestsh umount ${mountpoint}' or Ctrl-C`);
    let crashed = false;
    const onStop = (): void => {
      if (stop.received === 'SIGHUP') {
        crashed = true;
        void unmount(m.mountpoint, true).catch(() => undefined);
        return;
      }
      void m.unmount(Number.POSITIVE_INFINITY, (e) => say(`${e.message}; unmounting as soon as it is free`)).catch((e: Error) => say(e.message));
    };
    stop.signal.addEventListener('abort', onStop, { once: true });
    if (stop.signal.aborted) onStop();
    try {
      await m.ended;
    } catch (e) {
      throw new Error(`the mount ended because the appliance failed (${(e as Error).message}); the images are unchanged`);
    }
    if (o.verbose) say(`appliance calls made: ${[...m.fs.calls].map(([action, n]) => `${action} ${n}`).join(', ') || 'none'}`);
    if (crashed || o.changes === 'discard' || o.readonly) {
      if (!o.readonly) say(crashed ? `stopped by ${stop.received}: the changes were discarded` : 'the changes were discarded');
      return stop.exitCode(0);
    }
    await s.shutdown();
    return stop.exitCode(0);
  } finally {
    await s.close();
  }
}

/** How long `guestsh umount` waits for the mounting process to commit and exit. */
const COMMIT_WAIT_MS = 10 * 60_000;

export async function umountVerb(o: Options): Promise<number> {
  const [mountpoint, ...more] = o.operands;
  if (!mountpoint || more.length) throw new UsageError('usage: guestsh umount MOUNTPOINT');
  const path = resolve(mountpoint);
  const there = mountAt(path);
  if (!there) throw new UsageError(`${mountpoint} is not a mount point`);
  if (there.type !== FS_TYPE) throw new UsageError(`${mountpoint} is not a guestsh mount (it is ${there.type}); use umount(8)`);
  const owner = Number(there.source.split(':')[1]);
  try {
    await unmount(path);
  } catch (e) {
    if (e instanceof BusyError) throw new UsageError(e.message);
    throw e;
  }
  // The owner commits (or discards) once its mount is gone; wait for it, so a
  // script that unmounts can use the image right after.
  const until = Date.now() + COMMIT_WAIT_MS;
  while (Number.isInteger(owner) && owner > 0 && alive(owner)) {
    if (Date.now() > until) throw new Error(`unmounted, but guestsh (pid ${owner}) has not finished committing after ${COMMIT_WAIT_MS / 60_000} minutes`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

/** Running, and not a zombie: a server that has exited but whose parent has not reaped it yet has finished. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
