// copy_in and copy_out move whole trees as tar streams (the daemon's tar_in
// and tar_out). For sandboxed calls guestsh writes and reads those streams
// itself rather than running the host's tar: host tar opens paths by name
// (a directory link planted on the way is followed), creates device nodes
// and restores set-uid bits when run as root, and the stream from the
// appliance is untrusted input. Here every member goes through the confined
// walks of host-fs.ts. What is written to the host: regular files (mode bits
// 0777 at most, owned by whoever runs guestsh), directories, and symbolic
// links as links (never followed); device nodes, FIFOs and sockets are left
// out. The format is ustar with pax
// records for long names and large sizes, which GNU tar in the appliance
// reads and writes.

import type { Stats } from 'node:fs';
import { type FileHandle, lstat, readdir, readlink, symlink, unlink } from 'node:fs/promises';
import { at, type HostPath, kindOf, openDirAt, openDirectory, openReadAt, openRoot, openWriteAt, readChunks, RecipePolicyError, writeAll } from './host-fs.js';
import { RECIPE_LIMITS } from './limits.js';

const BLOCK = 512;

interface Member {
  name: string;
  type: '0' | '2' | '5';
  st: Stats;
  size: number;
  linkname?: string;
}

/** A numeric field in octal, or false if the value needs more digits than it has. */
function octal(h: Buffer, off: number, width: number, value: number): boolean {
  const s = Math.trunc(value).toString(8);
  if (value < 0 || s.length > width - 1) return false;
  h.write(s.padStart(width - 1, '0'), off, 'ascii');
  h[off + width - 1] = 0;
  return true;
}

/** One pax record: its decimal length counts itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + String(bodyLen).length;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return `${len}${body}`;
}

function checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum;
}

function block(name: Buffer, type: string, size: number, st: Pick<Stats, 'mode' | 'uid' | 'gid' | 'mtimeMs'>, linkname: Buffer, pax: string[]): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, Math.min(name.length, 100));
  octal(h, 100, 8, st.mode & 0o7777);
  if (!octal(h, 108, 8, st.uid)) pax.push(paxRecord('uid', String(st.uid)));
  if (!octal(h, 116, 8, st.gid)) pax.push(paxRecord('gid', String(st.gid)));
  if (!octal(h, 124, 12, size)) {
    pax.push(paxRecord('size', String(size)));
    octal(h, 124, 12, 0);
  }
  octal(h, 136, 12, Math.floor(st.mtimeMs / 1000));
  h.write(type, 156, 'ascii');
  linkname.copy(h, 157, 0, Math.min(linkname.length, 100));
  h.write('ustar\x0000', 257, 'latin1');
  h.write(checksum(h).toString(8).padStart(6, '0'), 148, 'ascii');
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

/** A member's header block, after a pax header when its name, link or size does not fit ustar. */
function header(m: Member): Buffer {
  const name = Buffer.from(m.name);
  const linkname = Buffer.from(m.linkname ?? '');
  const pax: string[] = [];
  if (name.length > 100) pax.push(paxRecord('path', m.name));
  if (linkname.length > 100) pax.push(paxRecord('linkpath', m.linkname!));
  const h = block(name, m.type, m.size, m.st, linkname, pax);
  if (pax.length === 0) return h;
  const body = Buffer.from(pax.join(''));
  const padded = Buffer.alloc(Math.ceil(body.length / BLOCK) * BLOCK);
  body.copy(padded);
  return Buffer.concat([block(Buffer.from('PaxHeader'), 'x', body.length, { mode: 0o644, uid: 0, gid: 0, mtimeMs: m.st.mtimeMs }, Buffer.alloc(0), []), padded, h]);
}

interface PackContext {
  action: string;
  signal: AbortSignal;
}

/**
 * The tar stream of the host file or directory `h`, read through confined
 * walks: a member named by its last component (`.` for the root itself),
 * directories recursively in name order, symbolic links stored as links.
 */
export async function* packTree(h: HostPath, action: string, signal: AbortSignal): AsyncGenerator<Buffer> {
  const ctx: PackContext = { action, signal };
  if (h.parts.length === 0) {
    const dir = await openRoot(h.root);
    try {
      yield* packDirectory(dir, await dir.stat(), '.', h.shown, ctx);
    } finally {
      await dir.close();
    }
  } else {
    const parent = await openDirectory({ ...h, parts: h.parts.slice(0, -1) }, action, false);
    try {
      yield* packMember(parent, h.parts.at(-1)!, h.parts.at(-1)!, h.shown, ctx);
    } finally {
      await parent.close();
    }
  }
  yield Buffer.alloc(2 * BLOCK);
}

async function* packMember(dir: FileHandle, name: string, member: string, shown: string, ctx: PackContext): AsyncGenerator<Buffer> {
  ctx.signal.throwIfAborted();
  const st = await lstat(at(dir, name));
  if (st.isSymbolicLink()) {
    yield header({ name: member, type: '2', st, size: 0, linkname: await readlink(at(dir, name)) });
    return;
  }
  const opened = await openReadAt(dir, name, ctx.action, shown, true);
  try {
    if (opened.st.isDirectory()) yield* packDirectory(opened.fh, opened.st, member, shown, ctx);
    else yield* packFile(opened.fh, opened.st, member, ctx);
  } finally {
    await opened.fh.close();
  }
}

async function* packDirectory(dir: FileHandle, st: Stats, member: string, shown: string, ctx: PackContext): AsyncGenerator<Buffer> {
  yield header({ name: `${member}/`, type: '5', st, size: 0 });
  const names = (await readdir(`/proc/self/fd/${dir.fd}`)).sort();
  for (const n of names) yield* packMember(dir, n, `${member}/${n}`, `${shown}/${n}`, ctx);
}

async function* packFile(fh: FileHandle, st: Stats, member: string, ctx: PackContext): AsyncGenerator<Buffer> {
  yield header({ name: member, type: '0', st, size: st.size });
  for (let left = st.size; left > 0; ) {
    ctx.signal.throwIfAborted();
    const buf = Buffer.alloc(Math.min(RECIPE_LIMITS.ioChunkBytes, left));
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    // The header has promised st.size bytes: a file that shrank meanwhile is padded with zeros, one that grew is cut.
    const n = bytesRead === 0 ? buf.length : bytesRead;
    left -= n;
    yield buf.subarray(0, n);
  }
  const pad = (BLOCK - (st.size % BLOCK)) % BLOCK;
  if (pad) yield Buffer.alloc(pad);
}

function cstring(b: Buffer, off: number, len: number): string {
  const field = b.subarray(off, off + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

interface Pending {
  remaining: number;
  pad: number;
  /** The file the member's data goes to, or its metadata collected in memory. */
  fh: FileHandle | null;
  meta: Buffer[] | null;
  finish: () => Promise<void>;
}

export interface ExtractOptions {
  action: string;
  /** The target directory as the recipe named it, for messages. */
  shown: string;
  signal: AbortSignal;
}

/**
 * Extracts a tar stream, fed chunk by chunk, into the directory open as
 * `dir`: each member through a confined walk from it, refused if its name
 * has `..` or would lead through a symbolic link.
 */
export class TarExtractor {
  /** Device nodes, FIFOs and sockets the archive had, left out. */
  skipped = 0;
  private readonly head = Buffer.alloc(BLOCK);
  private headFill = 0;
  private pending: Pending | null = null;
  /** What pax records and GNU long-name members say about the next member. */
  private next: { path?: string; linkpath?: string; size?: number } = {};
  private ended = false;

  constructor(
    private readonly dir: FileHandle,
    private readonly o: ExtractOptions,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      const p = this.pending;
      if (!p) {
        const n = Math.min(BLOCK - this.headFill, chunk.length - off);
        chunk.copy(this.head, this.headFill, off, off + n);
        this.headFill += n;
        off += n;
        if (this.headFill === BLOCK) {
          this.headFill = 0;
          await this.member(this.head);
        }
        continue;
      }
      if (p.remaining > 0) {
        const piece = chunk.subarray(off, off + Math.min(p.remaining, chunk.length - off));
        if (p.fh) await writeAll(p.fh, piece, this.o.signal);
        else p.meta?.push(Buffer.from(piece));
        off += piece.length;
        p.remaining -= piece.length;
      } else {
        const n = Math.min(p.pad, chunk.length - off);
        off += n;
        p.pad -= n;
      }
      if (p.remaining === 0 && p.pad === 0) {
        this.pending = null;
        await p.finish();
      }
    }
  }

  /** The stream is over: it must not stop inside a member. */
  end(): void {
    if (this.pending || this.headFill) throw this.corrupt('ends in the middle of a member');
  }

  /** Releases the file being written, if the extraction stopped inside it. */
  async close(): Promise<void> {
    const fh = this.pending?.fh;
    this.pending = null;
    await fh?.close();
  }

  private corrupt(what: string): RecipePolicyError {
    return new RecipePolicyError(`${this.o.action}: the archive from the appliance ${what}`);
  }

  private num(h: Buffer, off: number, len: number): number {
    if (h[off]! & 0x80) {
      // GNU's base-256 for values octal cannot hold; the sign bit set means negative.
      if (h[off] === 0xff) throw this.corrupt('has a negative number in a header');
      let v = BigInt(h[off]! & 0x7f);
      for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(h[off + i]!);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.corrupt('has a number too large in a header');
      return Number(v);
    }
    const s = h.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').trim();
    if (!/^[0-7]*$/.test(s)) throw this.corrupt('has a damaged header');
    return s === '' ? 0 : parseInt(s, 8);
  }

  /** A member name as components below the target; `..` anywhere is refused. */
  private parts(name: string): string[] {
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) throw this.corrupt(`names '${name}', outside the directory it is extracted into`);
    return parts;
  }

  private shown(parts: readonly string[]): string {
    return [this.o.shown, ...parts].join('/');
  }

  private async begin(p: Pending): Promise<void> {
    if (p.remaining === 0 && p.pad === 0) await p.finish();
    else this.pending = p;
  }

  private skip(size: number, pad: number): Promise<void> {
    return this.begin({ remaining: size, pad, fh: null, meta: null, finish: async () => {} });
  }

  private async member(h: Buffer): Promise<void> {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    if (checksum(h) !== this.num(h, 148, 8)) throw this.corrupt('has a damaged header');
    const type = String.fromCharCode(h[156]!);
    const size = this.next.size ?? this.num(h, 124, 12);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > RECIPE_LIMITS.tarMetaBytes) throw this.corrupt(`has a ${size}-byte header record`);
      const meta: Buffer[] = [];
      return this.begin({ remaining: size, pad, fh: null, meta, finish: async () => this.metadata(type, Buffer.concat(meta)) });
    }
    let name = cstring(h, 0, 100);
    const prefix = h.toString('latin1', 257, 263) === 'ustar\0' ? cstring(h, 345, 155) : '';
    if (prefix) name = `${prefix}/${name}`;
    name = this.next.path ?? name;
    const linkname = this.next.linkpath ?? cstring(h, 157, 100);
    this.next = {};
    const mode = this.num(h, 100, 8) & 0o777;
    const mtime = this.num(h, 136, 12);
    const parts = this.parts(name);
    switch (type) {
      case '0':
      case '\0':
      case '7': {
        const fh = await this.createFile(parts);
        return this.begin({
          remaining: size,
          pad,
          fh,
          meta: null,
          finish: async () => {
            try {
              await fh.chmod(mode);
              await fh.utimes(mtime, mtime);
            } finally {
              await fh.close();
            }
          },
        });
      }
      case '5':
        await this.makeDirectory(parts, mode);
        return this.skip(size, pad);
      case '2':
        await this.makeLink(parts, linkname);
        return this.skip(size, pad);
      case '1':
        await this.copyHardLink(parts, this.parts(linkname), mode);
        return this.skip(size, pad);
      case '3':
      case '4':
      case '6':
        this.skipped++;
        return this.skip(size, pad);
      default:
        throw this.corrupt(`has a member of type '${type}' ('${name}'), which guestsh does not extract`);
    }
  }

  private metadata(type: string, data: Buffer): void {
    if (type === 'L') this.next.path = cstring(data, 0, data.length);
    else if (type === 'K') this.next.linkpath = cstring(data, 0, data.length);
    else if (type === 'x') {
      for (let pos = 0; pos < data.length; ) {
        const space = data.indexOf(0x20, pos);
        const len = space < 0 ? NaN : Number(data.toString('latin1', pos, space));
        if (!Number.isInteger(len) || len <= space - pos || pos + len > data.length) throw this.corrupt('has a damaged pax header');
        const record = data.toString('utf8', space + 1, pos + len - 1);
        const eq = record.indexOf('=');
        const key = record.slice(0, eq);
        const value = record.slice(eq + 1);
        if (key === 'path') this.next.path = value;
        else if (key === 'linkpath') this.next.linkpath = value;
        else if (key === 'size') {
          if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw this.corrupt('has a damaged pax header');
          this.next.size = Number(value);
        }
        pos += len;
      }
    }
  }

  /** Runs `f` in the directory that holds `parts` (made if missing), with the last name. */
  private async inParent<T>(parts: readonly string[], f: (dir: FileHandle, name: string) => Promise<T>): Promise<T> {
    if (parts.length === 0) throw this.corrupt('names the target directory itself as a file');
    const dir = await openDirAt(this.dir, parts.slice(0, -1), { action: this.o.action, shown: this.shown(parts), whole: false, create: true });
    try {
      return await f(dir, parts.at(-1)!);
    } finally {
      await dir.close();
    }
  }

  private createFile(parts: readonly string[]): Promise<FileHandle> {
    return this.inParent(parts, (dir, name) => openWriteAt(dir, name, this.o.action, this.shown(parts), 0o600));
  }

  private async makeDirectory(parts: readonly string[], mode: number): Promise<void> {
    // The target itself keeps its mode: it is the recipe's output directory or one in it.
    if (parts.length === 0) return;
    const dir = await openDirAt(this.dir, parts, { action: this.o.action, shown: this.shown(parts), whole: true, create: true });
    try {
      // Owner rwx stays so that the members after it can be written (and the output directory removed).
      await dir.chmod(mode | 0o700);
    } finally {
      await dir.close();
    }
  }

  private makeLink(parts: readonly string[], target: string): Promise<void> {
    return this.inParent(parts, async (dir, name) => {
      try {
        await symlink(target, at(dir, name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // Extracting the same tree again replaces its links; anything else in the way stays.
        const st = await lstat(at(dir, name));
        if (!st.isSymbolicLink()) throw new RecipePolicyError(`${this.o.action}: host path '${this.shown(parts)}' is a ${kindOf(st)}; the archive has a symbolic link there`);
        await unlink(at(dir, name));
        await symlink(target, at(dir, name));
      }
    });
  }

  /** A hard link becomes a copy: the host gets no links between files, so a file written later changes only itself. */
  private async copyHardLink(parts: readonly string[], source: readonly string[], mode: number): Promise<void> {
    if (source.length === 0) throw this.corrupt('has a hard link to the target directory');
    const srcDir = await openDirAt(this.dir, source.slice(0, -1), { action: this.o.action, shown: this.shown(source), whole: false });
    let src: FileHandle;
    try {
      src = (await openReadAt(srcDir, source.at(-1)!, this.o.action, this.shown(source), false)).fh;
    } finally {
      await srcDir.close();
    }
    try {
      const dst = await this.createFile(parts);
      try {
        for await (const chunk of readChunks(src, this.o.signal)) await writeAll(dst, chunk, this.o.signal);
        await dst.chmod(mode);
      } finally {
        await dst.close();
      }
    } finally {
      await src.close();
    }
  }
}
