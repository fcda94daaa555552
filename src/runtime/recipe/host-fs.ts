// The host files a sandboxed call may touch, and nothing beside them. A path
// is normalised, must lie inside an allowed directory, and is then walked one
// component at a time from an open descriptor of that directory: each
// component is opened relative to the one before (open(2) on
// /proc/self/fd/N/NAME, which is openat(N, NAME) for a Node that has no
// openat) with O_NOFOLLOW, so a symbolic link anywhere on the way, planted
// before the call or while it runs, is refused instead of followed, and `..`
// never reaches the kernel. Only regular files and directories are opened, and
// with O_NONBLOCK, so a FIFO cannot hold the open; what was opened is checked
// again with fstat against what lstat saw.

import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, mkdir, open } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { RECIPE_LIMITS } from './limits.js';

export class RecipePolicyError extends Error {
  override name = 'RecipePolicyError';
}

const { O_RDONLY, O_WRONLY, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;

/** `name` inside the directory open as `dir`, for the *at-style calls. */
export function at(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name}`;
}

export function kindOf(st: Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

/** An allowed host directory: its real path, and the path as it was given (absolute arguments may use either). */
export interface HostRoot {
  real: string;
  given: string;
}

/** A host path inside an allowed directory, as the components below it. */
export interface HostPath {
  root: HostRoot;
  parts: string[];
  /** As the caller wrote it, for messages. */
  shown: string;
  /** The root's real path joined with the parts (nothing on the way is a link, so this is its real path). */
  real: string;
}

function inside(path: string, root: string): string[] | null {
  const rel = relative(root, path);
  if (rel === '') return [];
  if (rel.startsWith('..') || isAbsolute(rel)) return null;
  return rel.split('/');
}

/** `p` (relative to `base`) taken apart below the innermost root that holds it, or null if none does. */
export function locate(p: string, base: HostRoot, roots: readonly HostRoot[]): HostPath | null {
  const abs = resolve(base.real, p);
  let best: HostPath | null = null;
  for (const root of roots) {
    for (const prefix of [root.real, root.given]) {
      const parts = inside(abs, prefix);
      if (parts && (!best || parts.length < best.parts.length)) best = { root, parts, shown: p, real: join(root.real, ...parts) };
    }
  }
  return best;
}

function refuse(action: string, shown: string, what: string): RecipePolicyError {
  return new RecipePolicyError(`${action}: host path '${shown}' ${what}`);
}

const THROUGH_LINK = 'is a symbolic link (host paths in recipes may not lead through symbolic links)';

/** Why opening `name` in `dir` failed, as the recipe should hear it ("is a symbolic link …"). */
async function whyNot(e: unknown, dir: FileHandle, name: string): Promise<string> {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return THROUGH_LINK;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'ENOTDIR') {
    // O_DIRECTORY is checked before O_NOFOLLOW: a link to a directory fails here too.
    const st = await lstat(at(dir, name)).catch(() => null);
    if (st?.isSymbolicLink()) return THROUGH_LINK;
    return st ? `is a ${kindOf(st)}, not a directory` : 'is not a directory';
  }
  if (code === 'ENXIO') return 'is a FIFO or socket; recipes use only regular files and directories';
  return `cannot be opened: ${(e as Error).message}`;
}

export interface WalkOptions {
  action: string;
  /** For messages: the path as the caller wrote it. */
  shown: string;
  /** The walk's last component is the path itself (not only the directory it is in). */
  whole: boolean;
  /** Make missing directories on the way (extracting an archive). */
  create?: boolean;
}

/**
 * Opens the directory `parts` below the directory open as `from` (which
 * stays open), each component a real directory opened with O_NOFOLLOW.
 */
export async function openDirAt(from: FileHandle, parts: readonly string[], o: WalkOptions): Promise<FileHandle> {
  // A second descriptor of `from` itself (the magic link leads to the open directory).
  let dir = await open(`/proc/self/fd/${from.fd}`, O_RDONLY | O_DIRECTORY);
  try {
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      if (o.create) {
        await mkdir(at(dir, name), 0o755).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
      }
      let next: FileHandle;
      try {
        next = await open(at(dir, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (e) {
        const why = await whyNot(e, dir, name);
        throw refuse(o.action, o.shown, o.whole && i === parts.length - 1 ? why : `leads through '${parts.slice(0, i + 1).join('/')}', which ${why}`);
      }
      await dir.close();
      dir = next;
    }
    return dir;
  } catch (e) {
    await dir.close();
    throw e;
  }
}

export async function openRoot(root: HostRoot): Promise<FileHandle> {
  return open(root.real, O_RDONLY | O_DIRECTORY);
}

/** Opens the directory `h` (it must exist); `whole` false when `h` is only the way to the path named in messages. */
export async function openDirectory(h: HostPath, action: string, whole = true): Promise<FileHandle> {
  const root = await openRoot(h.root);
  try {
    return await openDirAt(root, h.parts, { action, shown: h.shown, whole });
  } finally {
    await root.close();
  }
}

/** Runs `f` on the directory that holds `h` and the last component's name; `h` must not be the root itself. */
async function inParent<T>(h: HostPath, action: string, f: (dir: FileHandle, name: string) => Promise<T>): Promise<T> {
  const dir = await openDirectory({ ...h, parts: h.parts.slice(0, -1) }, action, false);
  try {
    return await f(dir, h.parts.at(-1)!);
  } finally {
    await dir.close();
  }
}

/**
 * Opens `name` in `dir` for reading if it is a regular file (or, when
 * `directories`, a directory). Anything else is refused before it is opened.
 */
export async function openReadAt(dir: FileHandle, name: string, action: string, shown: string, directories: boolean): Promise<{ fh: FileHandle; st: Stats }> {
  const st = await lstat(at(dir, name)).catch((e: unknown) => {
    throw (e as NodeJS.ErrnoException).code === 'ENOENT' ? refuse(action, shown, 'does not exist') : e;
  });
  if (st.isSymbolicLink()) throw refuse(action, shown, THROUGH_LINK);
  if (!st.isFile() && !(directories && st.isDirectory())) {
    throw refuse(action, shown, `is a ${kindOf(st)}; recipes read only regular files${directories ? ' and directories' : ''}`);
  }
  let fh: FileHandle;
  try {
    fh = await open(at(dir, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (st.isDirectory() ? O_DIRECTORY : 0));
  } catch (e) {
    throw refuse(action, shown, await whyNot(e, dir, name));
  }
  const now = await fh.stat();
  if (now.ino !== st.ino || now.dev !== st.dev || kindOf(now) !== kindOf(st)) {
    await fh.close();
    throw refuse(action, shown, 'was replaced while it was being opened');
  }
  return { fh, st: now };
}

/** Opens the regular file (or, when `directories`, directory) `h` for reading. */
export async function openForRead(h: HostPath, action: string, directories: boolean): Promise<{ fh: FileHandle; st: Stats }> {
  if (h.parts.length === 0) {
    if (!directories) throw refuse(action, h.shown, 'is a directory; recipes read only regular files');
    const fh = await openRoot(h.root);
    return { fh, st: await fh.stat() };
  }
  return inParent(h, action, (dir, name) => openReadAt(dir, name, action, h.shown, directories));
}

/**
 * Opens `name` in `dir` for writing, emptied: a new regular file, or an
 * existing one that has no other hard links (it could be one of a file
 * outside). Anything else that is there already is refused.
 */
export async function openWriteAt(dir: FileHandle, name: string, action: string, shown: string, mode = 0o666): Promise<FileHandle> {
  const st = await lstat(at(dir, name)).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  });
  if (st?.isSymbolicLink()) throw refuse(action, shown, THROUGH_LINK);
  if (st && !st.isFile()) throw refuse(action, shown, `is a ${kindOf(st)}; recipes write only regular files`);
  let fh: FileHandle;
  try {
    fh = await open(at(dir, name), O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, mode);
  } catch (e) {
    throw refuse(action, shown, await whyNot(e, dir, name));
  }
  try {
    const now = await fh.stat();
    if (!now.isFile() || (st && (now.ino !== st.ino || now.dev !== st.dev))) throw refuse(action, shown, 'was replaced while it was being opened');
    if (now.nlink > 1) throw refuse(action, shown, 'has other hard links (it may be a file outside the output directory)');
    await fh.truncate(0);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

export async function openForWrite(h: HostPath, action: string): Promise<FileHandle> {
  if (h.parts.length === 0) throw refuse(action, h.shown, 'is a directory');
  return inParent(h, action, (dir, name) => openWriteAt(dir, name, action, h.shown));
}

/** A file's bytes, a chunk at a time; stops with the signal's reason once it aborts. */
export async function* readChunks(fh: FileHandle, signal: AbortSignal): AsyncGenerator<Buffer> {
  for (;;) {
    signal.throwIfAborted();
    const buf = Buffer.allocUnsafe(RECIPE_LIMITS.ioChunkBytes);
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) return;
    yield buf.subarray(0, bytesRead);
  }
}

/** Writes all of `chunk`, unless the signal has aborted. */
export async function writeAll(fh: FileHandle, chunk: Uint8Array, signal: AbortSignal): Promise<void> {
  for (let off = 0; off < chunk.length; ) {
    signal.throwIfAborted();
    const n = Math.min(chunk.length - off, RECIPE_LIMITS.ioChunkBytes);
    const { bytesWritten } = await fh.write(chunk, off, n);
    off += bytesWritten;
  }
}
