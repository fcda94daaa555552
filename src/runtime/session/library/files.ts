// File actions libguestfs builds on top of daemon procedures: whole-file
// reads and writes, directory listings, the batched *list calls, the
// deprecated stat structs, and copy_in/copy_out through a host `tar`.

import { spawn } from 'node:child_process';
import { mkdir, stat as hostStat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArgValue, StructValue } from '../../../spec/values.js';
import { UsageError } from '../../errors.js';
import type { Session } from '../session.js';
import { batched, byteSort, callToBuffer, downloadToBuffer, fromBuffer, type LibraryAction, splitNul } from './util.js';

// libguestfs's threshold: up to 2 MiB travels inside one message, larger
// content is streamed as an upload.
const INLINE_WRITE_MAX = 2 * 1024 * 1024;
// Names per internal_*list call, as in libguestfs (keeps replies under the message limit).
const LIST_BATCH = 1000;

function bytesOf(v: ArgValue): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v as Uint8Array);
}

async function writeFile(s: Session, path: string, content: Buffer, append: boolean): Promise<void> {
  if (content.length <= INLINE_WRITE_MAX) {
    await s.call(append ? 'internal_write_append' : 'internal_write', [path, content]);
    return;
  }
  if (append) {
    const offset = (await s.call('filesize', [path])) as bigint;
    await s.call('upload_offset', ['-', path, offset], {}, { fileIn: fromBuffer(content) });
  } else {
    await s.call('upload', ['-', path], {}, { fileIn: fromBuffer(content) });
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
function statFromStatns(ns: StructValue): StructValue {
  return {
    dev: ns.st_dev!,
    ino: ns.st_ino!,
    mode: ns.st_mode!,
    nlink: ns.st_nlink!,
    uid: ns.st_uid!,
    gid: ns.st_gid!,
    rdev: ns.st_rdev!,
    size: ns.st_size!,
    blksize: ns.st_blksize!,
    blocks: ns.st_blocks!,
    atime: ns.st_atime_sec!,
    mtime: ns.st_mtime_sec!,
    ctime: ns.st_ctime_sec!,
  };
}

function lstatnslist(s: Session, dir: string, names: readonly string[]): Promise<StructValue[]> {
  return batched(names, LIST_BATCH, async (slice) => (await s.call('internal_lstatnslist', [dir, slice])) as StructValue[]);
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

async function copyIn(s: Session, localpath: string, remotedir: string): Promise<void> {
  if (!(await hostStat(localpath).catch(() => null))) {
    throw new UsageError(`copy_in: source '${localpath}' does not exist (or cannot be read)`);
  }
  if (!(await s.call('is_dir', [remotedir]))) throw new UsageError(`copy_in: target '${remotedir}' is not a directory`);
  const { dir, base } = splitPath('copy_in', localpath);
  const tar = runTar('copy_in', ['-cf', '-', base], dir ?? undefined);
  tar.child.stdin!.end();
  const upload = s.call('tar_in', ['-', remotedir], {}, { fileIn: tar.child.stdout! });
  // Whichever fails first explains the failure (a tar error makes the upload fail too).
  const [tarResult, uploadResult] = await Promise.allSettled([tar.wait, upload]);
  if (tarResult.status === 'rejected') throw tarResult.reason;
  if (uploadResult.status === 'rejected') throw uploadResult.reason;
}

async function copyOut(s: Session, remotepath: string, localdir: string): Promise<void> {
  const st = await hostStat(localdir).catch(() => null);
  if (!st?.isDirectory()) throw new UsageError(`copy_out: target '${localdir}' is not a directory`);
  const { base } = splitPath('copy_out', remotepath);
  if (await s.call('is_file', [remotepath])) {
    await s.call('download', [remotepath, join(localdir, base)]);
    return;
  }
  if (!(await s.call('is_dir', [remotepath]))) throw new UsageError(`copy_out: '${remotepath}' is not a file or directory`);
  const target = join(localdir, base === '' ? '.' : base);
  await mkdir(target, { recursive: true });
  const tar = runTar('copy_out', ['-xf', '-'], target);
  const stdin = tar.child.stdin!;
  let tarFailed: unknown = null;
  tar.wait.catch((e: unknown) => (tarFailed = e));
  const download = s.call('tar_out', [remotepath, '-'], {}, {
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

export const fileActions: Record<string, LibraryAction> = {
  write: (s, [path, content]) => writeFile(s, path as string, bytesOf(content!), false),
  write_append: (s, [path, content]) => writeFile(s, path as string, bytesOf(content!), true),
  read_file: (s, [path]) => downloadToBuffer(s, path as string),
  cat: async (s, [path]) => (await downloadToBuffer(s, path as string)).toString('utf8'),
  read_lines: async (s, [path]) => splitLines(await downloadToBuffer(s, path as string)),
  ls: async (s, [dir]) => byteSort(splitNul(await callToBuffer(s, 'ls0', [dir as string, '-']))),
  find: async (s, [dir]) => byteSort(splitNul(await callToBuffer(s, 'find0', [dir as string, '-']))),
  stat: async (s, [path]) => statFromStatns((await s.call('statns', [path as string])) as StructValue),
  lstat: async (s, [path]) => statFromStatns((await s.call('lstatns', [path as string])) as StructValue),
  lstatnslist: (s, [dir, names]) => lstatnslist(s, dir as string, names as string[]),
  lstatlist: async (s, [dir, names]) => (await lstatnslist(s, dir as string, names as string[])).map(statFromStatns),
  lxattrlist: (s, [dir, names]) =>
    batched(names as string[], LIST_BATCH, async (slice) => (await s.call('internal_lxattrlist', [dir as string, slice])) as StructValue[]),
  readlinklist: (s, [dir, names]) =>
    batched(names as string[], LIST_BATCH, async (slice) => (await s.call('internal_readlinklist', [dir as string, slice])) as string[]),
  copy_in: (s, [local, remote]) => copyIn(s, local as string, remote as string),
  copy_out: (s, [remote, local]) => copyOut(s, remote as string, local as string),
};
