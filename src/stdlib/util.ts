// Shared helpers of the standard library. Everything here runs both inside
// the recipe sandbox (no Node APIs, no TextDecoder) and on the host against
// a Session's `g`, so it uses nothing but the guestfs calls it is given.

import type { GuestfsApi } from '../spec/api.generated.js';

export type Log = (...args: unknown[]) => void;

/** What every standard-library operation takes: the guest and, optionally, a logger. */
export interface Ctx {
  g: GuestfsApi;
  log?: Log | undefined;
}

/** One thing an operation did to the guest. */
export interface Change {
  /** The operation, e.g. "ssh-hostkeys" or "hostname". */
  op: string;
  action: 'removed' | 'truncated' | 'created' | 'modified' | 'ran' | 'changed-uuid';
  path: string;
  detail?: string | undefined;
}

export function note(ctx: Ctx, changes: Change[], c: Change): void {
  changes.push(c);
  ctx.log?.(`${c.op}: ${c.action} ${c.path}${c.detail ? ` (${c.detail})` : ''}`);
}

export async function exists(g: GuestfsApi, path: string): Promise<boolean> {
  return g.exists(path);
}

/** The file's text, or null when it does not exist (or is not a regular file). */
export async function readText(g: GuestfsApi, path: string): Promise<string | null> {
  if (!(await g.isFile(path, { followsymlinks: true }))) return null;
  return g.cat(path);
}

/** Paths matching a glob in the guest (no trailing slash on directories). */
export async function glob(g: GuestfsApi, pattern: string): Promise<string[]> {
  return g.globExpand(pattern, { directoryslash: false });
}

/** Lists every entry of a directory including dot files, as absolute paths; [] when missing. */
export async function entries(g: GuestfsApi, dir: string): Promise<string[]> {
  if (!(await g.isDir(dir))) return [];
  const names = await g.ls(dir);
  return names.map((n) => `${dir.replace(/\/$/, '')}/${n}`);
}

/**
 * Removes what the glob matches. `onlyFiles`: regular files, symlinks and
 * other non-directories only, descending into matched directories and
 * keeping the directory tree (as virt-sysprep does for spools).
 */
export async function removeGlob(ctx: Ctx, changes: Change[], op: string, pattern: string, mode: 'all' | 'files' = 'all'): Promise<void> {
  for (const p of await glob(ctx.g, pattern)) await removePath(ctx, changes, op, p, mode);
}

export async function removePath(ctx: Ctx, changes: Change[], op: string, p: string, mode: 'all' | 'files' = 'all'): Promise<void> {
  const { g } = ctx;
  if (await g.isDir(p)) {
    if (mode === 'all') {
      await g.rmRf(p);
      note(ctx, changes, { op, action: 'removed', path: p });
    } else {
      for (const e of await entries(g, p)) await removePath(ctx, changes, op, e, 'files');
    }
    return;
  }
  if (!(await g.isSymlink(p)) && !(await g.exists(p))) return;
  await g.rmF(p);
  note(ctx, changes, { op, action: 'removed', path: p });
}

/** Empties a file if it exists and has content. */
export async function truncateFile(ctx: Ctx, changes: Change[], op: string, p: string): Promise<void> {
  if (!(await ctx.g.isFile(p))) return;
  const size = (await ctx.g.statns(p)).st_size;
  if (size === 0n) return;
  await ctx.g.truncate(p);
  note(ctx, changes, { op, action: 'truncated', path: p });
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export async function passwd(g: GuestfsApi): Promise<PasswdEntry[]> {
  const text = await readText(g, '/etc/passwd');
  if (text === null) return [];
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 7)
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! }));
}

/** Home directories of the guest's users that exist: /root and every passwd home under /home (and others that exist). */
export async function homeDirs(g: GuestfsApi): Promise<string[]> {
  const homes = new Set<string>(['/root']);
  for (const u of await passwd(g)) {
    if (u.home && u.home !== '/' && u.home.startsWith('/') && !u.home.startsWith('/proc') && !u.home.startsWith('/dev')) homes.add(u.home);
  }
  for (const h of await glob(g, '/home/*')) homes.add(h);
  const out: string[] = [];
  for (const h of homes) if (await g.isDir(h)) out.push(h);
  return out;
}

/** Single-quotes a string for /bin/sh. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Replaces the file's text (keeping its mode and owner when it exists). */
export async function writeText(g: GuestfsApi, path: string, text: string): Promise<void> {
  if (await g.isFile(path)) {
    const st = await g.statns(path);
    await g.write(path, text);
    await g.chmod(Number(st.st_mode & 0o7777n), path);
    await g.chown(Number(st.st_uid), Number(st.st_gid), path);
  } else {
    await g.write(path, text);
  }
}

/** Bytes to text without TextDecoder (not present in the sandbox). */
export function utf8Decode(b: Uint8Array): string {
  let out = '';
  for (let i = 0; i < b.length; ) {
    const c = b[i++]!;
    if (c < 0x80) out += String.fromCharCode(c);
    else if (c < 0xe0) out += String.fromCharCode(((c & 0x1f) << 6) | (b[i++]! & 0x3f));
    else if (c < 0xf0) out += String.fromCharCode(((c & 0x0f) << 12) | ((b[i++]! & 0x3f) << 6) | (b[i++]! & 0x3f));
    else {
      const cp = ((c & 0x07) << 18) | ((b[i++]! & 0x3f) << 12) | ((b[i++]! & 0x3f) << 6) | (b[i++]! & 0x3f);
      out += String.fromCodePoint(cp);
    }
  }
  return out;
}

/** Reads "key=value" recipe params as a list (comma separated). */
export function listParam(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return v.split(',').map((x) => x.trim()).filter(Boolean);
}

export function boolParam(v: string | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  return !/^(0|false|no|off)$/i.test(v);
}

export function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** What a ready (standard-library) recipe receives. */
export interface RecipeCtx extends Ctx {
  params: Readonly<Record<string, string>>;
}

/**
 * Makes sure the guest's filesystems are mounted: when nothing is mounted,
 * inspects the disk and mounts the one operating system's filesystems
 * (shortest mountpoint first). Returns the inspection root when it inspected.
 */
export async function ensureMounted(ctx: Ctx): Promise<string | null> {
  const { g } = ctx;
  if ((await g.mounts()).length > 0) return null;
  const roots = await g.inspectOs();
  if (roots.length !== 1) throw new Error(`expected one operating system on the disk, found ${roots.length}; mount the filesystems first (-i or -m)`);
  const root = roots[0]!;
  const mps = Object.entries(await g.inspectGetMountpoints(root)).sort((a, b) => a[0].length - b[0].length);
  for (const [mp, dev] of mps) {
    try {
      await g.mount(dev, mp);
    } catch (e) {
      if (mp === '/') throw e;
    }
  }
  return root;
}

/** A fresh name under the guest's /tmp for a short-lived file or directory. */
export const tmpName = (what: string): string => `/tmp/.guestsh-${what}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
