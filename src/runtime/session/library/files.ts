// File actions libguestfs builds on top of daemon procedures: whole-file
// reads and writes, directory listings, the batched *list calls, the
// deprecated stat structs, and copy_in/copy_out through a host `tar`.

import { spawn } from 'node:child_process';
import { mkdir, stat as hostStat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stat, StatNS } from '../../../spec/api.js';
import { CancelledError, UsageError } from '../../errors.js';
import type { LibraryTable, SessionHost } from '../host.js';
import { batched, byteSort, collectFileOut, downloadToBuffer, fromBuffer, splitNul } from './util.js';

// libguestfs's threshold: up to 2 MiB travels inside one message, larger
// content is streamed as an upload.
const INLINE_WRITE_MAX = 2 * 1024 * 1024;
// Names per internal_*list call, as in libguestfs (keeps replies under the message limit).
const LIST_BATCH = 1000;

function bytesOf(v: Uint8Array | string): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v);
}

async function writeFile(s: SessionHost, path: string, content: Buffer, append: boolean): Promise<void> {
  if (content.length <= INLINE_WRITE_MAX) {
    if (append) await s.internal.internalWriteAppend(path, content);
    else await s.internal.internalWrite(path, content);
    return;
  }
  if (append) {
    const offset = await s.g.filesize(path);
    await s.g.uploadOffset('-', path, offset, { fileIn: fromBuffer(content) });
  } else {
    await s.g.upload('-', path, { fileIn: fromBuffer(content) });
  }
}

/** Lines split on LF, a trailing CR removed from each, no empty last line for a final LF. */
export function splitLines(buf: Buffer): string[] {
  if (buf.length === 0) return [];
  const lines = buf.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** statns → the old stat struct (seconds only). */
function statFromStatns(ns: StatNS): Stat {
  return {
    dev: ns.st_dev,
    ino: ns.st_ino,
    mode: ns.st_mode,
    nlink: ns.st_nlink,
    uid: ns.st_uid,
    gid: ns.st_gid,
    rdev: ns.st_rdev,
    size: ns.st_size,
    blksize: ns.st_blksize,
    blocks: ns.st_blocks,
    atime: ns.st_atime_sec,
    mtime: ns.st_mtime_sec,
    ctime: ns.st_ctime_sec,
  };
}

function lstatnslist(s: SessionHost, dir: string, names: readonly string[]): Promise<StatNS[]> {
  return batched(names, LIST_BATCH, (slice) => s.internal.internalLstatnslist(dir, slice));
}

/** Splits a path into (parent, last component) the way copy_in/copy_out name things. */
function splitPath(action: string, path: string): { dir: string | null; base: string } {
  if (path.length === 0) throw new UsageError(`${action}: path is empty`);
  let p = path;
  if (p.length >= 2 && p.endsWith('/')) p = p.slice(0, -1);
  const slash = p.lastIndexOf('/');
  if (slash > 0) return { dir: p.slice(0, slash), base: p.slice(slash + 1) };
  if (slash === 0) return { dir: '/', base: p.slice(1) };
  return { dir: null, base: p };
}

interface TarChild {
  wait: Promise<void>;
  child: ReturnType<typeof spawn>;
}

function runTar(action: string, args: string[], cwd: string | undefined): TarChild {
  const child = spawn('tar', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const wait = new Promise<void>((resolve, reject) => {
    child.once('error', (e) => reject(new UsageError(`${action}: cannot run tar: ${e.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new UsageError(`${action}: tar subprocess failed: ${stderr.trim() || `exit ${code ?? signal}`}`));
    });
  });
  return { wait, child };
}

async function copyIn(s: SessionHost, localpath: string, remotedir: string): Promise<void> {
  if (!(await hostStat(localpath).catch(() => null))) {
    throw new UsageError(`copy_in: source '${localpath}' does not exist (or cannot be read)`);
  }
  if (!(await s.g.isDir(remotedir))) throw new UsageError(`copy_in: target '${remotedir}' is not a directory`);
  const { dir, base } = splitPath('copy_in', localpath);
  const tar = runTar('copy_in', ['-cf', '-', base], dir ?? undefined);
  tar.child.stdin!.end();
  // An upload that stops early (cancelled, refused) no longer reads tar's
  // output, so tar must go too or it would wait on a full pipe for ever.
  const upload = s.g.tarIn('-', remotedir, undefined, { fileIn: tar.child.stdout! }).catch((e: unknown) => {
    tar.child.kill();
    throw e;
  });
  const [tarResult, uploadResult] = await Promise.allSettled([tar.wait, upload]);
  // A cancel is the caller's doing: say so, though tar died of it too.
  if (uploadResult.status === 'rejected' && uploadResult.reason instanceof CancelledError) throw uploadResult.reason;
  // Otherwise tar's error explains the failure (it makes the upload fail too).
  if (tarResult.status === 'rejected') throw tarResult.reason;
  if (uploadResult.status === 'rejected') throw uploadResult.reason;
}

async function copyOut(s: SessionHost, remotepath: string, localdir: string): Promise<void> {
  const st = await hostStat(localdir).catch(() => null);
  if (!st?.isDirectory()) throw new UsageError(`copy_out: target '${localdir}' is not a directory`);
  const { base } = splitPath('copy_out', remotepath);
  if (await s.g.isFile(remotepath)) {
    await s.g.download(remotepath, join(localdir, base));
    return;
  }
  if (!(await s.g.isDir(remotepath))) throw new UsageError(`copy_out: '${remotepath}' is not a file or directory`);
  const target = join(localdir, base === '' ? '.' : base);
  await mkdir(target, { recursive: true });
  const tar = runTar('copy_out', ['-xf', '-'], target);
  const stdin = tar.child.stdin!;
  let tarFailed: unknown = null;
  tar.wait.catch((e: unknown) => (tarFailed = e));
  const download = s.g.tarOut(remotepath, '-', undefined, {
    fileOut: (chunk) =>
      new Promise<void>((resolve, reject) => {
        if (tarFailed) return reject(tarFailed as Error);
        stdin.write(chunk, (e) => (e ? reject(e) : resolve()));
      }),
  });
  try {
    await download;
  } finally {
    stdin.end();
  }
  await tar.wait;
}

export const fileActions: LibraryTable = {
  write: (s, path, content) => writeFile(s, path, bytesOf(content), false),
  write_append: (s, path, content) => writeFile(s, path, bytesOf(content), true),
  read_file: (s, path) => downloadToBuffer(s, path),
  cat: async (s, path) => (await downloadToBuffer(s, path)).toString('utf8'),
  read_lines: async (s, path) => splitLines(await downloadToBuffer(s, path)),
  ls: async (s, dir) => byteSort(splitNul(await collectFileOut((t) => s.g.ls0(dir, '-', t)))),
  find: async (s, dir) => byteSort(splitNul(await collectFileOut((t) => s.g.find0(dir, '-', t)))),
  stat: async (s, path) => statFromStatns(await s.g.statns(path)),
  lstat: async (s, path) => statFromStatns(await s.g.lstatns(path)),
  lstatnslist: (s, dir, names) => lstatnslist(s, dir, names),
  lstatlist: async (s, dir, names) => (await lstatnslist(s, dir, names)).map(statFromStatns),
  lxattrlist: (s, dir, names) => batched(names, LIST_BATCH, (slice) => s.internal.internalLxattrlist(dir, slice)),
  readlinklist: (s, dir, names) => batched(names, LIST_BATCH, (slice) => s.internal.internalReadlinklist(dir, slice)),
  copy_in: (s, local, remote) => copyIn(s, local, remote),
  copy_out: (s, remote, local) => copyOut(s, remote, local),
};
