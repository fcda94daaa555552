// The kernel's FUSE protocol (7.x, as in linux/fuse.h): the request header,
// the opcodes guestsh answers, and the reply structures it writes. Every
// layout here is little-endian and 64-bit aligned, as the kernel defines it.

import type { StatNS, StatVFS } from '../../spec/api.js';

export const FUSE_KERNEL_VERSION = 7;
/** The minor version guestsh speaks: every structure below has its 7.31+ size. */
export const FUSE_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1n;

export const Op = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9, UNLINK: 10, RMDIR: 11,
  RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18, FSYNC: 20, SETXATTR: 21, GETXATTR: 22,
  LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25, INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, FSYNCDIR: 30,
  ACCESS: 34, CREATE: 35, INTERRUPT: 36, DESTROY: 38, BATCH_FORGET: 42, RENAME2: 45,
} as const;

/** fuse_init flags guestsh asks for. */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
} as const;

/** The largest read or write guestsh takes in one request: 256 pages, 1 MiB (guestfsd's messages stop at 4 MiB). */
export const MAX_PAGES = 256;
export const MAX_WRITE = MAX_PAGES * 4096;

/** fuse_setattr_in.valid bits. */
export const Fattr = {
  MODE: 1 << 0, UID: 1 << 1, GID: 1 << 2, SIZE: 1 << 3, ATIME: 1 << 4, MTIME: 1 << 5, ATIME_NOW: 1 << 7, MTIME_NOW: 1 << 8,
} as const;

export const RENAME_NOREPLACE = 1;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
const ATTR_SIZE = 88;

export interface Request {
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
  /** The opcode's own part, after the header. */
  body: Buffer;
}

export function parseRequest(buf: Buffer): Request {
  const len = buf.readUInt32LE(0);
  return {
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: buf.readBigUInt64LE(16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    body: buf.subarray(IN_HEADER_SIZE, len),
  };
}

/** A NUL-terminated name at `offset` of `body` (names, link targets, xattr names). */
export function cString(body: Buffer, offset = 0): { value: string; end: number } {
  let end = body.indexOf(0, offset);
  if (end < 0) end = body.length;
  return { value: body.subarray(offset, end).toString('utf8'), end: end + 1 };
}

export function reply(unique: bigint, error: number, payload?: Buffer): Buffer {
  const len = OUT_HEADER_SIZE + (payload?.length ?? 0);
  const out = Buffer.alloc(OUT_HEADER_SIZE);
  out.writeUInt32LE(len, 0);
  out.writeInt32LE(error === 0 ? 0 : -error, 4);
  out.writeBigUInt64LE(unique, 8);
  return payload?.length ? Buffer.concat([out, payload]) : out;
}

export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
}

export function parseInit(body: Buffer): InitIn {
  return { major: body.readUInt32LE(0), minor: body.readUInt32LE(4), maxReadahead: body.readUInt32LE(8), flags: body.readUInt32LE(12) };
}

export function initOut(o: { minor: number; maxReadahead: number; flags: number; maxWrite: number; maxPages: number }): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
  b.writeUInt32LE(o.minor, 4);
  b.writeUInt32LE(o.maxReadahead, 8);
  b.writeUInt32LE(o.flags, 12);
  b.writeUInt16LE(16, 16); // max_background
  b.writeUInt16LE(12, 18); // congestion_threshold
  b.writeUInt32LE(o.maxWrite, 20);
  b.writeUInt32LE(1, 24); // time_gran: nanoseconds
  b.writeUInt16LE(o.maxPages, 28);
  return b;
}

/** Seconds and nanoseconds of a cache timeout in milliseconds. */
function timeout(ms: number): [bigint, number] {
  return [BigInt(Math.floor(ms / 1000)), (ms % 1000) * 1_000_000];
}

function writeAttr(b: Buffer, at: number, st: StatNS): void {
  b.writeBigUInt64LE(st.st_ino, at);
  b.writeBigUInt64LE(st.st_size, at + 8);
  b.writeBigUInt64LE(st.st_blocks < 0n ? 0n : st.st_blocks, at + 16);
  b.writeBigInt64LE(st.st_atime_sec, at + 24);
  b.writeBigInt64LE(st.st_mtime_sec, at + 32);
  b.writeBigInt64LE(st.st_ctime_sec, at + 40);
  b.writeUInt32LE(Number(st.st_atime_nsec), at + 48);
  b.writeUInt32LE(Number(st.st_mtime_nsec), at + 52);
  b.writeUInt32LE(Number(st.st_ctime_nsec), at + 56);
  b.writeUInt32LE(Number(st.st_mode), at + 60);
  b.writeUInt32LE(Number(st.st_nlink), at + 64);
  b.writeUInt32LE(Number(BigInt.asUintN(32, st.st_uid)), at + 68);
  b.writeUInt32LE(Number(BigInt.asUintN(32, st.st_gid)), at + 72);
  b.writeUInt32LE(Number(BigInt.asUintN(32, st.st_rdev)), at + 76);
  b.writeUInt32LE(Number(st.st_blksize > 0n ? st.st_blksize : 4096n), at + 80);
}

export function entryOut(nodeid: bigint, st: StatNS, ttlMs: number): Buffer {
  const b = Buffer.alloc(40 + ATTR_SIZE);
  const [s, ns] = timeout(ttlMs);
  b.writeBigUInt64LE(nodeid, 0);
  b.writeBigUInt64LE(0n, 8); // generation
  b.writeBigUInt64LE(s, 16);
  b.writeBigUInt64LE(s, 24);
  b.writeUInt32LE(ns, 32);
  b.writeUInt32LE(ns, 36);
  writeAttr(b, 40, st);
  return b;
}

export function attrOut(st: StatNS, ttlMs: number): Buffer {
  const b = Buffer.alloc(16 + ATTR_SIZE);
  const [s, ns] = timeout(ttlMs);
  b.writeBigUInt64LE(s, 0);
  b.writeUInt32LE(ns, 8);
  writeAttr(b, 16, st);
  return b;
}

export function openOut(fh: bigint, openFlags = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(fh, 0);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

export function writeOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

export function statfsOut(v: StatVFS): Buffer {
  const b = Buffer.alloc(80);
  b.writeBigUInt64LE(v.blocks, 0);
  b.writeBigUInt64LE(v.bfree, 8);
  b.writeBigUInt64LE(v.bavail, 16);
  b.writeBigUInt64LE(v.files, 24);
  b.writeBigUInt64LE(v.ffree, 32);
  b.writeUInt32LE(Number(v.bsize), 40);
  b.writeUInt32LE(Number(v.namemax), 44);
  b.writeUInt32LE(Number(v.frsize), 48);
  return b;
}

export function xattrSizeOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

/** d_type of a dirent from guestfs's one-letter file type ('f' is a FIFO, 'r' a regular file). */
const DT: Record<string, number> = { f: 1, c: 2, d: 4, b: 6, r: 8, l: 10, s: 12 };

export interface DirEntry {
  ino: bigint;
  name: string;
  ftyp: string;
}

/**
 * As many fuse_dirent records from `entries[from…]` as fit in `size` bytes;
 * each record's offset is the index of the entry after it.
 */
export function direntsOut(entries: readonly DirEntry[], from: number, size: number): Buffer {
  const parts: Buffer[] = [];
  let used = 0;
  for (let i = from; i < entries.length; i++) {
    const e = entries[i]!;
    const name = Buffer.from(e.name, 'utf8');
    const len = (24 + name.length + 7) & ~7;
    if (used + len > size) break;
    const rec = Buffer.alloc(len);
    rec.writeBigUInt64LE(e.ino, 0);
    rec.writeBigUInt64LE(BigInt(i + 1), 8);
    rec.writeUInt32LE(name.length, 16);
    rec.writeUInt32LE(DT[e.ftyp] ?? 0, 20);
    name.copy(rec, 24);
    parts.push(rec);
    used += len;
  }
  return Buffer.concat(parts);
}
