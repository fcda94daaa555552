// The writer's lock on one image: flock(2) taken on the image file itself.
//
// Why flock on the image and not a lock file beside it: the lock belongs to
// the file, not to the name it was opened by, so a symlink, a hard link, a
// relative path or a bind mount all meet the same lock; taking it is one
// atomic system call (no check-then-create window); and the kernel drops it
// when the holder dies however it dies, so a recycled pid or a kill -9 never
// leaves a lock nobody can clear. flock and qemu's own image locks (OFD fcntl
// byte ranges) do not interact on Linux, so holding it does not stop qemu
// or qemu-img opening the image.
//
// Who holds it is read from /proc/locks, which names the holder's pid
// without taking the lock (a probe that took it, even shared for a moment,
// would make a writer starting at that instant fail). IMAGE.guestsh-lock
// (beside the image, or in the state directory: transaction.ts) records the
// holder's host, pid, process start and boot id for people reading the
// directory; it is written and removed only by the holder.

import { closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { tryFlock } from '../flock.js';

export interface LockInfo {
  host: string;
  pid: number;
  /** The holder's start, in clock ticks since boot (/proc/PID/stat field 22): with bootId, tells a live holder from a recycled pid. */
  started: number;
  bootId: string;
}

function processStart(pid: number): number {
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

function selfInfo(): LockInfo {
  return { host: hostname(), pid: process.pid, started: processStart(process.pid), bootId: bootId() };
}

/** How /proc/locks writes a file's identity: MAJOR:MINOR:INODE, the device numbers in hex. */
function procLocksKey(st: Stats): string {
  const dev = BigInt(st.dev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const hex = (n: bigint): string => n.toString(16).padStart(2, '0');
  return `${hex(major)}:${hex(minor)}:${st.ino}`;
}

/** The pid holding a writer's flock on the file `st` describes, from the kernel's table; null when there is none. */
export async function writerOf(st: Stats): Promise<number | null> {
  const key = procLocksKey(st);
  const table = await readFile('/proc/locks', 'utf8');
  for (const line of table.split('\n')) {
    // "N: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INO 0 EOF"; a waiting request is listed as "N: -> FLOCK ..." and holds nothing.
    const f = line.trim().split(/\s+/);
    if (f[1] === 'FLOCK' && f[3] === 'WRITE' && f[5] === key) return Number(f[4]);
  }
  return null;
}

/** What the holder wrote about itself, if it is readable and well-formed. */
export async function readLockInfo(infoPath: string): Promise<LockInfo | null> {
  const text = await readFile(infoPath, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.host === 'string' && Number.isInteger(v.pid) && Number.isInteger(v.started) && typeof v.bootId === 'string') return v as LockInfo;
  } catch {
    // not ours, or cut short: treated as absent
  }
  return null;
}

/** One held writer's lock. Released by release(), or by the kernel when the process ends. */
export class ImageLock {
  private fd: number | null;

  private constructor(
    fd: number,
    private readonly infoPath: string,
  ) {
    this.fd = fd;
  }

  /**
   * Takes the lock without waiting, or returns null when another open file
   * description holds it (another process, or another session of this one).
   */
  static tryTake(image: string, infoPath: string): ImageLock | null {
    const fd = openSync(image, 'r');
    let taken = false;
    try {
      taken = tryFlock(fd, 'exclusive');
    } finally {
      if (!taken) closeSync(fd);
    }
    if (!taken) return null;
    const lock = new ImageLock(fd, infoPath);
    try {
      // Written aside and renamed, so a reader of the directory never sees half of it.
      writeFileSync(`${infoPath}.tmp`, `${JSON.stringify(selfInfo())}\n`, { mode: 0o644 });
      renameSync(`${infoPath}.tmp`, infoPath);
    } catch (e) {
      lock.release();
      throw e;
    }
    return lock;
  }

  get held(): boolean {
    return this.fd !== null;
  }

  /** Removes the holder's note, then drops the lock. Synchronous, so it also works at process exit. */
  release(): void {
    if (this.fd === null) return;
    rmSync(this.infoPath, { force: true });
    rmSync(`${this.infoPath}.tmp`, { force: true });
    closeSync(this.fd);
    this.fd = null;
  }
}
