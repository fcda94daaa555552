// The filesystem behind a guestsh mount: each FUSE request answered by
// appliance calls, errno carried through from guestfsd's error replies.
//
// Nodes are paths (FUSE's node ids name a path in the appliance's tree, as
// libfuse's high-level API does). The caches: a directory's first OPENDIR
// (or a LOOKUP in it) lists it once (readdir), then stats all its entries
// in one call (lstatnslist) and reads all its symbolic links in another
// (readlinklist); the first xattr request in a directory fetches every
// entry's xattrs in one call (lxattrlist). Entries live for `cacheTimeoutMs`;
// since only this server writes through this appliance, every write
// invalidates exactly what it changed (the path, its parent's listing and
// attributes, a renamed or removed subtree) and the cache is never stale.
// The kernel's own attribute and entry caches get a second. Reads of a
// large file come through a 1 MiB window (see read()).

import { constants } from 'node:os';
import type { GuestfsApi, StatNS } from '../../spec/api.js';
import { ApplianceError, CancelledError, GuestfsError } from '../errors.js';
import {
  attrOut,
  cString,
  type DirEntry,
  direntsOut,
  entryOut,
  Fattr,
  FUSE_MINOR_VERSION,
  FUSE_ROOT_ID,
  InitFlag,
  initOut,
  MAX_PAGES,
  MAX_WRITE,
  Op,
  openOut,
  parseInit,
  RENAME_NOREPLACE,
  type Request,
  statfsOut,
  writeOut,
  xattrSizeOut,
} from './wire.js';

const E = constants.errno;
/** What the kernel caches an entry or attributes for. */
const KERNEL_TTL_MS = 1000;
/** libguestfs's utimens: -1 sets the time to now, -2 leaves it. */
const UTIME_NOW = -1n;
const UTIME_OMIT = -2n;
const WRITE_OPS: ReadonlySet<number> = new Set([
  Op.SETATTR, Op.SYMLINK, Op.MKNOD, Op.MKDIR, Op.UNLINK, Op.RMDIR, Op.RENAME, Op.RENAME2, Op.LINK, Op.WRITE, Op.SETXATTR, Op.REMOVEXATTR, Op.CREATE,
]);
/** Files with a read window at a time. */
const READ_WINDOWS = 16;
const O_ACCMODE = 3;
const O_TRUNC = 0o1000;

export interface GuestFsOptions {
  readonly: boolean;
  /** How long listings, attributes, link targets and xattrs are kept (libguestfs's cachetimeout; default 60 s). */
  cacheTimeoutMs: number;
  /** libguestfs's debugcalls: one line per request and its answer. */
  trace?: ((line: string) => void) | undefined;
  /** False once the appliance's session has ended (an error then means the mount cannot go on). */
  alive?: (() => boolean) | undefined;
  /** The appliance went away: the mount cannot go on. */
  onFatal?: ((e: Error) => void) | undefined;
}

/** A FUSE error answer: an errno number. */
class Errno extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** Linux errno names guestfsd may send that Node's table lacks. */
const LINUX_ERRNO: Readonly<Record<string, number>> = { EUCLEAN: 117, EREMOTEIO: 121, EMEDIUMTYPE: 124, ENOKEY: 126, EKEYREJECTED: 129 };

/** The errno number a failed call stands for. */
function errnoOf(e: unknown): number {
  if (e instanceof Errno) return e.errno;
  if (e instanceof GuestfsError) return (E as Record<string, number>)[e.errno] ?? LINUX_ERRNO[e.errno] ?? E.EIO;
  if (e instanceof CancelledError) return E.EINTR;
  return E.EIO;
}

interface Node {
  /** null once the path was removed or replaced while the kernel still holds the node. */
  path: string | null;
  lookups: bigint;
}

interface Cached<T> {
  value: T;
  until: number;
}

const join = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);
const parentOf = (path: string): string => path.slice(0, Math.max(1, path.lastIndexOf('/')));
const baseOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1);
const under = (path: string, prefix: string): boolean => path === prefix || path.startsWith(prefix === '/' ? '/' : `${prefix}/`);
const S_IFMT = 0o170000n;
const S_IFLNK = 0o120000n;
const FTYP: Record<string, string> = { '1': 'f', '2': 'c', '4': 'd', '6': 'b', '8': 'r', '10': 'l', '12': 's' };
/** guestfs's one-letter file type of a mode. */
const ftypOf = (mode: bigint): string => FTYP[String(Number((mode & S_IFMT) >> 12n))] ?? 'u';
/** lstatnslist marks an entry it could not stat with st_ino -1. */
const unstatted = (st: StatNS): boolean => st.st_ino === -1n || st.st_ino === 0xffffffffffffffffn;

export class GuestFs {
  private readonly nodes = new Map<bigint, Node>([[FUSE_ROOT_ID, { path: '/', lookups: 1n }]]);
  private readonly byPath = new Map<string, bigint>([['/', FUSE_ROOT_ID]]);
  private nextNode = 2n;
  private readonly stats = new Map<string, Cached<StatNS>>();
  private readonly listings = new Map<string, Cached<DirEntry[]>>();
  private readonly links = new Map<string, Cached<string>>();
  private readonly xattrs = new Map<string, Cached<Map<string, Buffer>>>();
  private readonly openDirs = new Map<bigint, DirEntry[]>();
  /** The last read windows, oldest first. */
  private readonly windows = new Map<string, { start: bigint; end: bigint; data: Promise<Buffer> }>();
  private nextHandle = 1n;
  /** Each guest filesystem's st_dev, numbered in the order met (the host sees one device). */
  private readonly devices = new Map<bigint, bigint>();
  /** Daemon calls made, by action (`guestsh mount -v` prints them at the end). */
  readonly calls = new Map<string, number>();

  constructor(
    private readonly g: GuestfsApi,
    private readonly o: GuestFsOptions,
  ) {}

  /** Answers one request: the reply's error (0: none) and payload, or null for requests that take none (FORGET). */
  async answer(req: Request): Promise<{ error: number; payload?: Buffer } | null> {
    try {
      if (this.o.readonly && WRITE_OPS.has(req.opcode)) throw new Errno(E.EROFS);
      const payload = await this.dispatch(req);
      if (payload === null) return null;
      this.o.trace?.(`fuse op ${req.opcode} node ${req.nodeid} = ok`);
      return { error: 0, payload };
    } catch (e) {
      if (e instanceof ApplianceError || this.o.alive?.() === false) this.o.onFatal?.(e as Error);
      const errno = errnoOf(e);
      this.o.trace?.(`fuse op ${req.opcode} node ${req.nodeid} = errno ${errno}${e instanceof Errno ? '' : ` (${(e as Error).message})`}`);
      return { error: errno };
    }
  }

  private async dispatch(req: Request): Promise<Buffer | null> {
    const b = req.body;
    switch (req.opcode) {
      case Op.INIT: {
        const init = parseInit(b);
        if (init.major !== 7) throw new Errno(E.EPROTO);
        const wanted = InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.MAX_PAGES | InitFlag.PARALLEL_DIROPS;
        return initOut({
          minor: Math.min(init.minor, FUSE_MINOR_VERSION),
          maxReadahead: Math.min(init.maxReadahead, MAX_WRITE),
          flags: init.flags & wanted,
          maxWrite: MAX_WRITE,
          maxPages: MAX_PAGES,
        });
      }
      case Op.DESTROY:
        return Buffer.alloc(0);
      case Op.FORGET:
        this.forget(req.nodeid, b.readBigUInt64LE(0));
        return null;
      case Op.BATCH_FORGET: {
        const count = b.readUInt32LE(0);
        for (let i = 0; i < count; i++) this.forget(b.readBigUInt64LE(8 + i * 16), b.readBigUInt64LE(16 + i * 16));
        return null;
      }
      case Op.INTERRUPT:
        // Calls already sent to the appliance run to their end; the kernel copes with a late answer.
        return null;
      case Op.LOOKUP: {
        const path = join(this.pathOf(req.nodeid), cString(b).value);
        return this.entry(path, await this.stat(path));
      }
      case Op.GETATTR:
        return attrOut(await this.stat(this.pathOf(req.nodeid)), KERNEL_TTL_MS);
      case Op.SETATTR:
        return attrOut(await this.setattr(this.pathOf(req.nodeid), b), KERNEL_TTL_MS);
      case Op.READLINK:
        return Buffer.from(await this.readlink(this.pathOf(req.nodeid)), 'utf8');
      case Op.SYMLINK: {
        const name = cString(b);
        const target = cString(b, name.end).value;
        const path = join(this.pathOf(req.nodeid), name.value);
        await this.mutate([path], () => this.call('ln_s', this.g.lnS(target, path)));
        return this.created(path);
      }
      case Op.MKNOD: {
        const mode = b.readUInt32LE(0);
        const rdev = b.readUInt32LE(4);
        const path = join(this.pathOf(req.nodeid), cString(b, 16).value);
        await this.mutate([path], () => this.mknod(path, mode, rdev));
        return this.created(path);
      }
      case Op.MKDIR: {
        const mode = b.readUInt32LE(0) & 0o7777;
        const path = join(this.pathOf(req.nodeid), cString(b, 8).value);
        await this.mutate([path], async () => {
          await this.call('mkdir', this.g.mkdir(path));
          await this.call('chmod', this.g.chmod(mode, path));
        });
        return this.created(path);
      }
      case Op.UNLINK:
      case Op.RMDIR: {
        const path = join(this.pathOf(req.nodeid), cString(b).value);
        const rmdir = req.opcode === Op.RMDIR;
        await this.mutate([path], () => (rmdir ? this.call('rmdir', this.g.rmdir(path)) : this.call('rm', this.g.rm(path))), rmdir);
        this.unlist(path);
        this.detach(path);
        return Buffer.alloc(0);
      }
      case Op.RENAME:
      case Op.RENAME2: {
        const newdir = b.readBigUInt64LE(0);
        const flags = req.opcode === Op.RENAME2 ? b.readUInt32LE(8) : 0;
        const from = cString(b, req.opcode === Op.RENAME2 ? 16 : 8);
        const to = cString(b, from.end);
        const oldPath = join(this.pathOf(req.nodeid), from.value);
        const newPath = join(this.pathOf(newdir), to.value);
        if (flags & ~RENAME_NOREPLACE) throw new Errno(E.EINVAL);
        if (flags & RENAME_NOREPLACE && (await this.exists(newPath))) throw new Errno(E.EEXIST);
        // A rename keeps the inode and its type: the new listing entry needs no call.
        const moved = this.fresh(this.stats, oldPath);
        await this.mutate([oldPath, newPath], () => this.call('rename', this.g.rename(oldPath, newPath)), true);
        this.unlist(oldPath);
        if (moved) this.enlist(newPath, moved);
        else this.listings.delete(parentOf(newPath));
        this.detach(newPath);
        this.moveNodes(oldPath, newPath);
        return Buffer.alloc(0);
      }
      case Op.LINK: {
        const target = this.pathOf(b.readBigUInt64LE(0));
        const path = join(this.pathOf(req.nodeid), cString(b, 8).value);
        await this.mutate([path, target], () => this.call('ln', this.g.ln(target, path)));
        return this.created(path);
      }
      case Op.OPEN: {
        const flags = b.readUInt32LE(0);
        if (this.o.readonly && ((flags & O_ACCMODE) !== 0 || flags & O_TRUNC)) throw new Errno(E.EROFS);
        await this.stat(this.pathOf(req.nodeid));
        return openOut(0n);
      }
      case Op.CREATE: {
        const mode = b.readUInt32LE(4) & 0o7777;
        const path = join(this.pathOf(req.nodeid), cString(b, 16).value);
        await this.mutate([path], async () => {
          await this.call('touch', this.g.touch(path));
          await this.call('chmod', this.g.chmod(mode, path));
        });
        return Buffer.concat([await this.created(path), openOut(0n)]);
      }
      case Op.READ:
        return this.read(this.pathOf(req.nodeid), b.readBigUInt64LE(8), b.readUInt32LE(16));
      case Op.WRITE: {
        const offset = b.readBigUInt64LE(8);
        const size = b.readUInt32LE(16);
        const data = b.subarray(40, 40 + size);
        const path = this.pathOf(req.nodeid);
        await this.mutate([path], async () => {
          for (let done = 0; done < data.length; ) {
            done += await this.call('pwrite', this.g.pwrite(path, data.subarray(done), offset + BigInt(done)));
          }
        });
        return writeOut(size);
      }
      case Op.STATFS:
        return statfsOut(await this.call('statvfs', this.g.statvfs('/')));
      case Op.RELEASE:
      case Op.FLUSH:
        return Buffer.alloc(0);
      case Op.FSYNC:
      case Op.FSYNCDIR:
        await this.call('sync', this.g.sync());
        return Buffer.alloc(0);
      case Op.OPENDIR: {
        const fh = this.nextHandle++;
        this.openDirs.set(fh, await this.listing(this.pathOf(req.nodeid)));
        return openOut(fh);
      }
      case Op.READDIR: {
        const fh = b.readBigUInt64LE(0);
        const offset = Number(b.readBigUInt64LE(8));
        const size = b.readUInt32LE(16);
        const entries = this.openDirs.get(fh);
        if (!entries) throw new Errno(E.EBADF);
        return direntsOut(entries, offset, size);
      }
      case Op.RELEASEDIR:
        this.openDirs.delete(b.readBigUInt64LE(0));
        return Buffer.alloc(0);
      case Op.GETXATTR: {
        const size = b.readUInt32LE(0);
        const name = cString(b, 8).value;
        const value = (await this.xattrsOf(this.pathOf(req.nodeid))).get(name);
        if (value === undefined) throw new Errno(E.ENODATA);
        return sized(value, size);
      }
      case Op.LISTXATTR: {
        const size = b.readUInt32LE(0);
        const names = [...(await this.xattrsOf(this.pathOf(req.nodeid))).keys()];
        return sized(Buffer.from(names.map((n) => `${n}\0`).join(''), 'utf8'), size);
      }
      case Op.SETXATTR: {
        const size = b.readUInt32LE(0);
        const name = cString(b, 8);
        const value = b.subarray(name.end, name.end + size);
        const text = value.toString('utf8');
        // guestfsd takes the value as a string: bytes that are not UTF-8 cannot cross.
        if (!Buffer.from(text, 'utf8').equals(value) || text.includes('\0')) throw new Errno(E.ENOTSUP);
        const path = this.pathOf(req.nodeid);
        await this.mutate([path], () => this.call('lsetxattr', this.g.lsetxattr(name.value, text, value.length, path)));
        return Buffer.alloc(0);
      }
      case Op.REMOVEXATTR: {
        const path = this.pathOf(req.nodeid);
        await this.mutate([path], () => this.call('lremovexattr', this.g.lremovexattr(cString(b).value, path)));
        return Buffer.alloc(0);
      }
      default:
        // ACCESS (the kernel checks modes itself: default_permissions), locks, ioctl, fallocate, lseek, …
        throw new Errno(E.ENOSYS);
    }
  }

  /**
   * Reads through a window of up to MAX_WRITE bytes per file: the kernel
   * reads ahead in 128 KiB requests (its readahead, which the server may only
   * lower), so a large file read in order costs one call per MiB instead of
   * eight. Requests that arrive while the window is on its way wait for it.
   */
  private async read(path: string, offset: bigint, size: number): Promise<Buffer> {
    const w = this.windows.get(path);
    if (w && offset >= w.start && offset + BigInt(size) <= w.end) {
      const data = await w.data;
      return data.subarray(Number(offset - w.start), Number(offset - w.start) + size);
    }
    const st = this.fresh(this.stats, path);
    const left = st ? st.st_size - offset : 0n;
    // Only for a file whose size is known and which goes on past this request: a small file is one pread as it is.
    if (left <= BigInt(size)) return this.call('pread', this.g.pread(path, size, offset));
    const length = Number(left < BigInt(MAX_WRITE) ? left : BigInt(MAX_WRITE));
    const data = this.call('pread', this.g.pread(path, length, offset));
    const window = { start: offset, end: offset + BigInt(length), data };
    this.windows.delete(path);
    this.windows.set(path, window);
    if (this.windows.size > READ_WINDOWS) this.windows.delete(this.windows.keys().next().value!);
    // A failed read leaves no window behind.
    data.catch(() => this.windows.get(path) === window && this.windows.delete(path));
    return (await data).subarray(0, size);
  }

  /** Counts the call and passes its result or error on. */
  private call<T>(action: string, p: Promise<T>): Promise<T> {
    this.calls.set(action, (this.calls.get(action) ?? 0) + 1);
    return p;
  }

  private pathOf(nodeid: bigint): string {
    const n = this.nodes.get(nodeid);
    if (!n) throw new Errno(E.ESTALE);
    if (n.path === null) throw new Errno(E.ENOENT);
    return n.path;
  }

  /** An entry reply for `path`, counting the kernel's new reference to its node. */
  private entry(path: string, st: StatNS): Buffer {
    let id = this.byPath.get(path);
    if (id === undefined) {
      id = this.nextNode++;
      this.nodes.set(id, { path, lookups: 0n });
      this.byPath.set(path, id);
    }
    this.nodes.get(id)!.lookups++;
    return entryOut(id, st, KERNEL_TTL_MS);
  }

  private forget(nodeid: bigint, n: bigint): void {
    const node = this.nodes.get(nodeid);
    if (!node || nodeid === FUSE_ROOT_ID) return;
    node.lookups -= n;
    if (node.lookups > 0n) return;
    this.nodes.delete(nodeid);
    if (node.path !== null && this.byPath.get(node.path) === nodeid) this.byPath.delete(node.path);
  }

  /** The node at `path` (and below) no longer names anything. */
  private detach(path: string): void {
    for (const [p, id] of [...this.byPath]) {
      if (!under(p, path)) continue;
      this.byPath.delete(p);
      this.nodes.get(id)!.path = null;
    }
  }

  private moveNodes(from: string, to: string): void {
    for (const [p, id] of [...this.byPath]) {
      if (!under(p, from)) continue;
      const moved = to + p.slice(from.length);
      this.byPath.delete(p);
      this.byPath.set(moved, id);
      this.nodes.get(id)!.path = moved;
    }
  }

  private fresh<T>(cache: Map<string, Cached<T>>, path: string): T | undefined {
    const c = cache.get(path);
    if (!c) return undefined;
    if (c.until > Date.now()) return c.value;
    cache.delete(path);
    return undefined;
  }

  private keep<T>(cache: Map<string, Cached<T>>, path: string, value: T): void {
    cache.set(path, { value, until: Date.now() + this.o.cacheTimeoutMs });
  }

  /**
   * Runs a change, then forgets what it may have changed: the attributes,
   * link targets and xattrs of the paths (`tree`: and of everything under
   * them, listings too), and their parents' attributes. The parents'
   * listings are edited by the caller instead (enlist, unlist), so a tree
   * copied in is not listed anew after each file; a change that fails drops
   * them.
   */
  private async mutate(paths: readonly string[], change: () => Promise<unknown>, tree = false): Promise<void> {
    let ok = false;
    try {
      await change();
      ok = true;
    } finally {
      for (const path of paths) {
        for (const cache of [this.stats, this.links, this.xattrs, this.listings, this.windows] as Map<string, unknown>[]) {
          if (!tree) cache.delete(path);
          else for (const p of [...cache.keys()]) if (under(p, path)) cache.delete(p);
        }
        this.stats.delete(parentOf(path));
        if (!ok) this.listings.delete(parentOf(path));
      }
    }
  }

  /** A new entry at `path`: its attributes fetched, its parent's listing extended, the kernel's reply. */
  private async created(path: string): Promise<Buffer> {
    const st = this.local(await this.call('lstatns', this.g.lstatns(path)));
    this.keep(this.stats, path, st);
    this.enlist(path, st);
    return this.entry(path, st);
  }

  /** Listings are replaced, never edited in place: an open directory keeps the entries it was opened with. */
  private enlist(path: string, st: StatNS): void {
    const parent = parentOf(path);
    const c = this.listings.get(parent);
    if (!c) return;
    const name = baseOf(path);
    c.value = [...c.value.filter((e) => e.name !== name), { ino: st.st_ino, name, ftyp: ftypOf(st.st_mode) }];
  }

  private unlist(path: string): void {
    const c = this.listings.get(parentOf(path));
    if (!c) return;
    const name = baseOf(path);
    c.value = c.value.filter((e) => e.name !== name);
  }

  /**
   * The host sees one device, so inode numbers of the guest's second and
   * further filesystems (a /boot beside /) get the filesystem's number in
   * their top byte: two filesystems' roots (both inode 2) must not look
   * like one directory to find or du. The first filesystem's numbers stay
   * as they are, so hard links keep sharing theirs.
   */
  private local(st: StatNS): StatNS {
    let k = this.devices.get(st.st_dev);
    if (k === undefined) this.devices.set(st.st_dev, (k = BigInt(this.devices.size)));
    return k === 0n ? st : { ...st, st_ino: (k << 56n) ^ st.st_ino };
  }

  private async stat(path: string): Promise<StatNS> {
    // A miss is asked for on its own, never answered from the parent's
    // listing: the appliance's errno (ENOENT, or EBADMSG on a damaged inode) is the answer.
    const cached = this.fresh(this.stats, path);
    if (cached) return cached;
    const st = this.local(await this.call('lstatns', this.g.lstatns(path)));
    this.keep(this.stats, path, st);
    return st;
  }

  private async exists(path: string): Promise<boolean> {
    return this.stat(path).then(
      () => true,
      (e) => {
        if (errnoOf(e) === E.ENOENT) return false;
        throw e;
      },
    );
  }

  /** A directory's entries ('.' and '..' too), with every entry's attributes and link target fetched alongside. */
  private async listing(dir: string): Promise<DirEntry[]> {
    const cached = this.fresh(this.listings, dir);
    if (cached) return cached;
    const entries = (await this.call('readdir', this.g.readdir(dir))).map((d) => ({ ino: d.ino, name: d.name, ftyp: d.ftyp }));
    const names = entries.filter((e) => e.name !== '.' && e.name !== '..').map((e) => e.name);
    if (names.length) {
      const stats = await this.call('lstatnslist', this.g.lstatnslist(dir, names));
      const linkNames: string[] = [];
      const byName = new Map(entries.map((e) => [e.name, e]));
      stats.forEach((raw, i) => {
        if (unstatted(raw)) return;
        const st = this.local(raw);
        byName.get(names[i]!)!.ino = st.st_ino;
        this.keep(this.stats, join(dir, names[i]!), st);
        if ((st.st_mode & S_IFMT) === S_IFLNK) linkNames.push(names[i]!);
      });
      if (linkNames.length) {
        const targets = await this.call('readlinklist', this.g.readlinklist(dir, linkNames));
        // readlinklist gives '' for a link it could not read: that one is read on its own when asked.
        targets.forEach((t, i) => t && this.keep(this.links, join(dir, linkNames[i]!), t));
      }
    }
    this.keep(this.listings, dir, entries);
    return entries;
  }

  private async readlink(path: string): Promise<string> {
    const cached = this.fresh(this.links, path);
    if (cached !== undefined) return cached;
    const target = await this.call('readlink', this.g.readlink(path));
    this.keep(this.links, path, target);
    return target;
  }

  /** The xattrs of `path`: with its parent's listing at hand, every entry's at once (lxattrlist). */
  private async xattrsOf(path: string): Promise<Map<string, Buffer>> {
    const cached = this.fresh(this.xattrs, path);
    if (cached) return cached;
    const parent = parentOf(path);
    const listing = path === '/' ? undefined : this.fresh(this.listings, parent);
    if (listing) {
      const names = listing.filter((e) => e.name !== '.' && e.name !== '..').map((e) => e.name);
      const flat = await this.call('lxattrlist', this.g.lxattrlist(parent, names)).catch(() => null);
      // The list is one entry per file (an empty name, the count as its value), then that many xattrs.
      if (flat) {
        let i = 0;
        for (const name of names) {
          const head = flat[i++];
          const count = head && head.attrname === '' ? Number(head.attrval.toString('utf8')) : 0;
          const map = new Map<string, Buffer>();
          for (let k = 0; k < count; k++, i++) map.set(flat[i]!.attrname, flat[i]!.attrval);
          this.keep(this.xattrs, join(parent, name), map);
        }
        const got = this.fresh(this.xattrs, path);
        if (got) return got;
      }
    }
    const map = new Map((await this.call('lgetxattrs', this.g.lgetxattrs(path))).map((x) => [x.attrname, x.attrval] as const));
    this.keep(this.xattrs, path, map);
    return map;
  }

  private async mknod(path: string, mode: number, rdev: number): Promise<void> {
    const perms = mode & 0o7777;
    switch (mode & 0o170000) {
      case 0o100000:
        await this.call('touch', this.g.touch(path));
        await this.call('chmod', this.g.chmod(perms, path));
        return;
      case 0o010000:
        await this.call('mkfifo', this.g.mkfifo(perms, path));
        return;
      default:
        // Devices and sockets: the kernel's major/minor split of the new dev_t encoding.
        await this.call('mknod', this.g.mknod(mode, (rdev >>> 8) & 0xfff, (rdev & 0xff) | ((rdev >>> 12) & 0xfff00), path));
    }
  }

  private async setattr(path: string, b: Buffer): Promise<StatNS> {
    const valid = b.readUInt32LE(0);
    await this.mutate([path], async () => {
      if (valid & Fattr.SIZE) await this.call('truncate_size', this.g.truncateSize(path, b.readBigUInt64LE(16)));
      if (valid & Fattr.MODE) {
        const st = await this.call('lstatns', this.g.lstatns(path));
        // chmod on a symbolic link would follow it.
        if ((st.st_mode & S_IFMT) !== S_IFLNK) await this.call('chmod', this.g.chmod(b.readUInt32LE(68) & 0o7777, path));
      }
      if (valid & (Fattr.UID | Fattr.GID)) {
        await this.call('lchown', this.g.lchown(valid & Fattr.UID ? b.readUInt32LE(76) : -1, valid & Fattr.GID ? b.readUInt32LE(80) : -1, path));
      }
      if (valid & (Fattr.ATIME | Fattr.MTIME | Fattr.ATIME_NOW | Fattr.MTIME_NOW)) {
        const time = (set: number, now: number, secAt: number, nsecAt: number): [bigint, bigint] =>
          valid & now ? [0n, UTIME_NOW] : valid & set ? [b.readBigInt64LE(secAt), BigInt(b.readUInt32LE(nsecAt))] : [0n, UTIME_OMIT];
        const [as, ans] = time(Fattr.ATIME, Fattr.ATIME_NOW, 32, 56);
        const [ms, mns] = time(Fattr.MTIME, Fattr.MTIME_NOW, 40, 60);
        await this.call('utimens', this.g.utimens(path, as, ans, ms, mns));
      }
    });
    return this.stat(path);
  }
}

/** A getxattr/listxattr answer: the size alone when asked with size 0, ERANGE when the buffer is too small. */
function sized(value: Buffer, size: number): Buffer {
  if (size === 0) return xattrSizeOut(value.length);
  if (value.length > size) throw new Errno(E.ERANGE);
  return value;
}
