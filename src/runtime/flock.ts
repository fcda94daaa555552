// flock(2), which Node lacks (fs-ext provides it). guestsh's cross-process
// locks are flocks on the files they protect: the kernel drops them when the
// holder dies however it dies, and they never interact with qemu's own image
// locks (OFD fcntl byte ranges).

import { createRequire } from 'node:module';

interface FsExt {
  flockSync(fd: number, how: 'ex' | 'exnb' | 'sh' | 'shnb' | 'un'): void;
  flock(fd: number, how: 'ex' | 'sh', cb: (err: NodeJS.ErrnoException | null) => void): void;
}
const fsExt = createRequire(import.meta.url)('fs-ext') as FsExt;

/** Takes the lock without waiting: false when another open file description holds a conflicting one. */
export function tryFlock(fd: number, mode: 'exclusive' | 'shared'): boolean {
  try {
    fsExt.flockSync(fd, mode === 'exclusive' ? 'exnb' : 'shnb');
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false;
    throw e;
  }
}

/** Waits for the lock, in libuv's thread pool so the event loop goes on. */
export function flock(fd: number, mode: 'exclusive' | 'shared'): Promise<void> {
  return new Promise((resolve, reject) => fsExt.flock(fd, mode === 'exclusive' ? 'ex' : 'sh', (err) => (err ? reject(err) : resolve())));
}
