// /dev/fuse and the mount itself. The mount is made by mount(8) with the
// opened /dev/fuse descriptor as its fd 3 (`-o fd=3`): the kernel takes the
// connection from the mounting process, so guestsh needs no native code.
// That needs root (CAP_SYS_ADMIN): fusermount3, the unprivileged route,
// hands the descriptor back over a unix socket (SCM_RIGHTS), which Node
// cannot receive.
//
// Requests are read with fs.read, which blocks one libuv pool thread while
// the kernel has nothing to send. guestsh keeps exactly one read in flight
// (the next is issued as soon as one returns; the answers are asynchronous),
// so the mount costs one of the pool's threads, never more.

import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, read, readFileSync, writeSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { MAX_WRITE } from './wire.js';

/** The largest request the kernel may send: a write of MAX_WRITE bytes and its headers. */
const READ_BUFFER = MAX_WRITE + 64 * 1024;

export interface MountOptions {
  readonly: boolean;
  /** Extra comma-separated mount options (guestmount's -o), passed to the kernel. */
  extra?: string | undefined;
}

/** The type /proc/mounts shows for a guestsh mount. */
export const FS_TYPE = 'fuse.guestsh';

/** The source field /proc/mounts shows: names the serving process, so `guestsh umount` can wait for its commit. */
export const sourceFor = (pid: number): string => `guestsh:${pid}`;

export class FuseDevice {
  private closed = false;
  private constructor(
    readonly fd: number,
    readonly mountpoint: string,
  ) {}

  /** Opens /dev/fuse and mounts it on `mountpoint` (an absolute path). */
  static async mount(mountpoint: string, o: MountOptions): Promise<FuseDevice> {
    if (process.getuid?.() !== 0) {
      throw new UsageError('guestsh mount needs root: the mount is made with mount(2) (run it as root, or copy files out with copy-out)');
    }
    let fd: number;
    try {
      fd = openSync('/dev/fuse', 'r+');
    } catch (e) {
      throw new UsageError(`cannot open /dev/fuse (${(e as NodeJS.ErrnoException).code}): load the fuse module (modprobe fuse)`);
    }
    const options = ['fd=3', 'rootmode=40000', 'user_id=0', 'group_id=0', 'default_permissions', 'allow_other', ...(o.readonly ? ['ro'] : [])];
    if (o.extra) options.push(o.extra);
    try {
      await new Promise<void>((resolve, reject) => {
        // -i: no /sbin/mount.fuse helper; the kernel gets the options as they are.
        const child = spawn('mount', ['-i', '-n', '-t', FS_TYPE, '-o', options.join(','), sourceFor(process.pid), mountpoint], {
          stdio: ['ignore', 'ignore', 'pipe', fd],
        });
        let err = '';
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('close', (code) =>
          code === 0 ? resolve() : reject(new UsageError(`cannot mount on ${mountpoint}: ${err.trim().replace(/^mount: /, '') || `mount exited with ${code}`}`)),
        );
      });
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return new FuseDevice(fd, mountpoint);
  }

  /**
   * Reads requests until the mount goes away (ENODEV), handing each to
   * `handle` without waiting for its answer.
   */
  async serve(handle: (request: Buffer) => void): Promise<void> {
    const buf = Buffer.allocUnsafe(READ_BUFFER);
    for (;;) {
      const n = await new Promise<number>((resolve, reject) => read(this.fd, buf, 0, buf.length, null, (e, bytes) => (e ? reject(e) : resolve(bytes))))
        .catch((e: NodeJS.ErrnoException) => {
          // Interrupted, or a request the kernel withdrew before we read it.
          if (e.code === 'EINTR' || e.code === 'EAGAIN' || e.code === 'ENOENT') return -1;
          if (e.code === 'ENODEV') return 0;
          throw e;
        });
      if (n === 0) return;
      if (n > 0) handle(Buffer.from(buf.subarray(0, n)));
    }
  }

  /** Writes one reply. A request the kernel has withdrawn (interrupted, or unmounted) makes the write fail; nothing waits for it then. */
  send(reply: Buffer): void {
    if (this.closed) return;
    try {
      writeSync(this.fd, reply);
    } catch {
      // ENOENT: the request was interrupted; ENODEV: the mount is gone.
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** Whether `mountpoint` is a mount point now, and what is mounted there. */
export function mountAt(mountpoint: string): { source: string; type: string } | null {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [source, target, type] = line.split(' ');
    if (target !== undefined && unescape(target) === mountpoint) return { source: unescape(source!), type: type! };
  }
  return null;
}

export class BusyError extends UsageError {
  override name = 'BusyError';
}

/**
 * Unmounts `mountpoint` (umount(8); `lazy`: detach now, finish when the last
 * user lets go). A busy mount is a BusyError that says what to do.
 */
export function unmount(mountpoint: string, lazy = false): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('umount', [...(lazy ? ['-l'] : []), '-n', mountpoint], { timeout: 30_000 }, (e, _out, stderr) => {
      if (!e) return resolve();
      const msg = String(stderr).trim();
      if (/busy/i.test(msg)) {
        reject(new BusyError(`${mountpoint} is busy: a process has a file open or its working directory there (fuser -vm ${mountpoint} lists them); end it, then unmount again`));
      } else reject(new UsageError(`cannot unmount ${mountpoint}: ${msg.replace(/^umount: /, '') || e.message}`));
    });
  });
}
