// virt-customize's file and system operations as typed functions over a
// mounted guest. Each returns what it changed. Commands run inside the guest
// through the daemon (`sh` / `command`), as virt-customize's --run-command does.

import * as firstboot from './firstboot.js';
import { firstbootInstall, install, uninstall, update } from './packages.js';
import type { RecipeParamSpecs } from '../spec/values.js';
import { type Change, type Ctx, ensureMounted, note, passwd, type RecipeCtx, readText, shq, tmpName, truncateFile, writeText } from './util.js';

export type { Change, Ctx } from './util.js';
// Package operations live in packages.ts; virt-customize has them, so this module offers them too.
export { firstbootInstall, install, installedPackages, packageManager, type PackageManager, uninstall, update } from './packages.js';

/** Sets the hostname: /etc/hostname (and the RHEL/SUSE files when present), and the old name in /etc/hosts. */
export async function hostname(ctx: Ctx, name: string): Promise<Change[]> {
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(name)) throw new Error(`hostname: '${name}' is not a valid host name`);
  const { g } = ctx;
  const changes: Change[] = [];
  const short = name.split('.')[0]!;
  const old = ((await readText(g, '/etc/hostname')) ?? '').trim();
  await writeText(g, '/etc/hostname', `${name}\n`);
  note(ctx, changes, { op: 'hostname', action: old ? 'modified' : 'created', path: '/etc/hostname', detail: `${old || '(none)'} → ${name}` });
  const network = await readText(g, '/etc/sysconfig/network');
  if (network !== null) {
    const lines = network.split('\n').filter((l) => !/^HOSTNAME=/.test(l));
    if (lines.at(-1) === '') lines.pop();
    await writeText(g, '/etc/sysconfig/network', `${lines.join('\n')}\nHOSTNAME=${name}\n`);
    note(ctx, changes, { op: 'hostname', action: 'modified', path: '/etc/sysconfig/network' });
  }
  if (await g.isFile('/etc/HOSTNAME')) {
    await writeText(g, '/etc/HOSTNAME', `${name}\n`);
    note(ctx, changes, { op: 'hostname', action: 'modified', path: '/etc/HOSTNAME' });
  }
  const hosts = await readText(g, '/etc/hosts');
  const oldShort = old.split('.')[0];
  if (hosts !== null && old && old !== name) {
    const re = new RegExp(`(?<=\\s)(${escapeRe(old)}|${escapeRe(oldShort!)})(?=\\s|$)`, 'gm');
    const updated = hosts
      .split('\n')
      .map((l) => (l.trimStart().startsWith('#') ? l : l.replace(re, (m) => (m === old ? name : short))))
      .join('\n');
    if (updated !== hosts) {
      await writeText(g, '/etc/hosts', updated);
      note(ctx, changes, { op: 'hostname', action: 'modified', path: '/etc/hosts', detail: `${old} → ${name}` });
    }
  }
  return changes;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Sets the timezone: /etc/localtime → /usr/share/zoneinfo/TZ, and /etc/timezone where the guest keeps one (Debian). */
export async function timezone(ctx: Ctx, tz: string): Promise<Change[]> {
  const { g } = ctx;
  if (!/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(tz)) throw new Error(`timezone: '${tz}' is not a timezone name`);
  const zone = `/usr/share/zoneinfo/${tz}`;
  if (!(await g.isFile(zone, { followsymlinks: true }))) throw new Error(`timezone: the guest has no ${zone}`);
  const changes: Change[] = [];
  await g.lnSf(zone, '/etc/localtime');
  note(ctx, changes, { op: 'timezone', action: 'modified', path: '/etc/localtime', detail: `→ ${zone}` });
  if (await g.isFile('/etc/timezone')) {
    await writeText(g, '/etc/timezone', `${tz}\n`);
    note(ctx, changes, { op: 'timezone', action: 'modified', path: '/etc/timezone' });
  }
  return changes;
}

export type PasswordCrypto = 'md5' | 'sha256' | 'sha512' | 'yescrypt';

/**
 * How to set a password (virt-builder's selectors as data): `password` a
 * literal, `file` the first line of a host file beside the recipe, `random`
 * 16 letters and digits drawn from the guest's /dev/urandom (shown in the log
 * and in the change's detail, as virt-customize prints it), `hash` a ready
 * crypt(3) string, `disabled` no password login, `locked` alone: lock the
 * present one. `crypto` picks the hashing method for the first three (the
 * guest's chpasswd -c); without it the guest's own configuration decides.
 */
export type PasswordSpec =
  | { password: string; locked?: boolean; crypto?: PasswordCrypto }
  | { file: string; locked?: boolean; crypto?: PasswordCrypto }
  | { random: true; locked?: boolean; crypto?: PasswordCrypto }
  | { hash: string; locked?: boolean }
  | { disabled: true }
  | { locked: true };

/** Replaces fields of one user's line in /etc/shadow. */
async function editShadow(ctx: Ctx, user: string, f: (fields: string[]) => void): Promise<void> {
  const text = await readText(ctx.g, '/etc/shadow');
  if (text === null) throw new Error('password: the guest has no /etc/shadow');
  let found = false;
  const out = text.split('\n').map((l) => {
    const fields = l.split(':');
    if (fields[0] !== user || fields.length < 2) return l;
    found = true;
    f(fields);
    return fields.join(':');
  });
  if (!found) throw new Error(`password: user '${user}' is not in /etc/shadow`);
  await writeText(ctx.g, '/etc/shadow', out.join('\n'));
}

const today = (): string => String(Math.floor(Date.now() / 86_400_000));

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A random password of `length` letters and digits. The sandbox has no
 * secure random source, so the bytes come from the guest side: /dev/urandom
 * read with od inside the daemon's chroot (the appliance kernel's generator).
 * Bytes ≥ 248 are dropped so every character is equally likely.
 */
export async function randomPassword(ctx: Ctx, length = 16): Promise<string> {
  let out = '';
  for (let round = 0; out.length < length; round++) {
    if (round > 8) throw new Error('password: could not read enough random bytes from the guest');
    let text: string;
    try {
      text = await ctx.g.sh(`od -An -vtu1 -N ${length * 2} /dev/urandom`);
    } catch (e) {
      throw new Error(`password: reading /dev/urandom in the guest failed (${e instanceof Error ? e.message : String(e)}); does the guest have od?`);
    }
    for (const b of text.trim().split(/\s+/).map(Number)) {
      if (Number.isInteger(b) && b < 248 && out.length < length) out += ALNUM[b % 62];
    }
  }
  return out;
}

/** Reads the first line of a host file (beside the recipe) through the guest. */
async function hostFileFirstLine(ctx: Ctx, hostPath: string, what: string): Promise<string> {
  const tmp = tmpName(what);
  await ctx.g.upload(hostPath, tmp);
  try {
    const line = (await ctx.g.cat(tmp)).split('\n')[0]!.replace(/\r$/, '');
    if (!line) throw new Error(`${what}: the first line of ${hostPath} is empty`);
    return line;
  } finally {
    await ctx.g.rmF(tmp);
  }
}

const CHPASSWD_METHOD: Record<PasswordCrypto, string> = { md5: 'MD5', sha256: 'SHA256', sha512: 'SHA512', yescrypt: 'YESCRYPT' };

/**
 * Sets a user's password (the user must exist). Plain, file and random
 * passwords are hashed inside the guest by its own chpasswd (so by default in
 * the method the guest's PAM / login.defs configure, e.g. yescrypt on Debian
 * 12; `crypto` overrides it); `hash` stores a ready crypt(3) string.
 */
export async function password(ctx: Ctx, user: string, spec: PasswordSpec): Promise<Change[]> {
  const { g } = ctx;
  if (!(await passwd(g)).some((u) => u.name === user)) throw new Error(`password: no user '${user}' in the guest`);
  const changes: Change[] = [];
  let shown = '';
  if ('password' in spec || 'file' in spec || 'random' in spec) {
    const pw = 'password' in spec ? spec.password : 'file' in spec ? await hostFileFirstLine(ctx, spec.file, 'password') : await randomPassword(ctx);
    if ('random' in spec) shown = pw;
    if (/[\n:]/.test(user) || /\n/.test(pw)) throw new Error('password: user names and passwords cannot contain newlines (or colons in names)');
    if (spec.crypto !== undefined && !(spec.crypto in CHPASSWD_METHOD)) throw new Error(`password: crypto '${String(spec.crypto)}' is not one of ${Object.keys(CHPASSWD_METHOD).join(', ')}`);
    const method = spec.crypto ? ` -c ${CHPASSWD_METHOD[spec.crypto]}` : '';
    const file = tmpName('pw');
    await g.write(file, `${user}:${pw}\n`);
    try {
      await g.chmod(0o600, file);
      await g.sh(`chpasswd${method} < ${shq(file)}`);
    } catch (e) {
      throw new Error(`password: chpasswd in the guest failed (${e instanceof Error ? e.message : String(e)}); pass { hash } instead`);
    } finally {
      await g.rmF(file);
    }
  } else if ('hash' in spec) {
    if (/[:\n]/.test(spec.hash)) throw new Error('password: a crypt hash cannot contain ":" or newlines');
    await editShadow(ctx, user, (f) => {
      f[1] = spec.hash;
      if (f.length > 2) f[2] = today();
    });
  } else if ('disabled' in spec) {
    await editShadow(ctx, user, (f) => {
      f[1] = '*';
    });
  }
  if ('locked' in spec && spec.locked) {
    await editShadow(ctx, user, (f) => {
      if (!f[1]!.startsWith('!')) f[1] = `!${f[1]}`;
    });
  }
  const kind = 'password' in spec || 'file' in spec ? 'set' : 'random' in spec ? `random password: ${shown}` : 'hash' in spec ? 'hash set' : 'disabled' in spec ? 'disabled' : '';
  const crypto = 'crypto' in spec && spec.crypto ? spec.crypto : '';
  note(ctx, changes, { op: 'password', action: 'modified', path: '/etc/shadow', detail: `${user}: ${[kind, crypto, 'locked' in spec && spec.locked ? 'locked' : ''].filter(Boolean).join(', ')}` });
  return changes;
}

export const rootPassword = (ctx: Ctx, spec: PasswordSpec): Promise<Change[]> => password(ctx, 'root', spec);

/**
 * virt-builder's password selector syntax as a PasswordSpec:
 * password:PW, file:FILE, random, disabled, locked:SELECTOR, locked; a bare
 * string that is none of these is taken as the password itself.
 */
export function parsePasswordSelector(sel: string, crypto?: PasswordCrypto): PasswordSpec {
  const c = crypto ? { crypto } : {};
  if (sel === 'locked') return { locked: true };
  if (sel.startsWith('locked:')) {
    const inner = parsePasswordSelector(sel.slice(7), crypto);
    if ('disabled' in inner || !('password' in inner || 'file' in inner || 'random' in inner || 'hash' in inner)) return { locked: true };
    return { ...inner, locked: true };
  }
  if (sel === 'random') return { random: true, ...c };
  if (sel === 'disabled') return { disabled: true };
  if (sel.startsWith('password:')) return { password: sel.slice(9), ...c };
  if (sel.startsWith('file:')) return { file: sel.slice(5), ...c };
  return { password: sel, ...c };
}

/** Adds SSH public keys to a user's ~/.ssh/authorized_keys (keys already there are not repeated). */
export async function sshInject(ctx: Ctx, user: string, keys: string | string[] | { file: string }): Promise<Change[]> {
  const { g } = ctx;
  const u = (await passwd(g)).find((x) => x.name === user);
  if (!u) throw new Error(`ssh-inject: no user '${user}' in the guest`);
  let list: string[];
  if (typeof keys === 'object' && !Array.isArray(keys)) {
    // A host file (beside the recipe): through the guest, the only way a recipe reads host files.
    const tmp = tmpName('key');
    await g.upload(keys.file, tmp);
    try {
      list = (await g.cat(tmp)).split('\n');
    } finally {
      await g.rmF(tmp);
    }
  } else {
    list = Array.isArray(keys) ? keys : [keys];
  }
  list = list.map((k) => k.trim()).filter((k) => k && !k.startsWith('#'));
  if (list.length === 0) throw new Error('ssh-inject: no keys given');
  const changes: Change[] = [];
  const dir = `${u.home}/.ssh`;
  if (!(await g.isDir(dir))) {
    await g.mkdirP(dir);
    await g.chmod(0o700, dir);
    await g.chown(u.uid, u.gid, dir);
    note(ctx, changes, { op: 'ssh-inject', action: 'created', path: dir });
  }
  const file = `${dir}/authorized_keys`;
  const existing = (await readText(g, file)) ?? '';
  const have = new Set(existing.split('\n').map((l) => l.trim()));
  const add = list.filter((k) => !have.has(k));
  if (add.length) {
    const text = existing + (existing && !existing.endsWith('\n') ? '\n' : '') + add.join('\n') + '\n';
    await g.write(file, text);
    await g.chmod(0o600, file);
    await g.chown(u.uid, u.gid, file);
    note(ctx, changes, { op: 'ssh-inject', action: existing ? 'modified' : 'created', path: file, detail: `${add.length} key(s) for ${user}` });
  }
  return changes;
}

/** Writes a file (replacing it; mode and owner kept when it existed). */
export async function write(ctx: Ctx, path: string, content: string | Uint8Array): Promise<Change[]> {
  const existed = await ctx.g.exists(path);
  if (typeof content === 'string') await writeText(ctx.g, path, content);
  else await ctx.g.write(path, content);
  const changes: Change[] = [];
  note(ctx, changes, { op: 'write', action: existed ? 'modified' : 'created', path });
  return changes;
}

/** Appends a line, adding a newline first when the file lacks a final one; follows the file's CRLF convention; creates the file. */
export async function appendLine(ctx: Ctx, path: string, line: string): Promise<Change[]> {
  const { g } = ctx;
  const changes: Change[] = [];
  const text = await readText(g, path);
  if (text === null) {
    await g.write(path, `${line}\n`);
    note(ctx, changes, { op: 'append-line', action: 'created', path });
    return changes;
  }
  const eol = /\r\n/.test(text) ? '\r\n' : '\n';
  const prefix = text.length > 0 && !text.endsWith('\n') ? eol : '';
  await g.writeAppend(path, `${prefix}${line}${eol}`);
  note(ctx, changes, { op: 'append-line', action: 'modified', path });
  return changes;
}

/** Rewrites a text file through a function; nothing is written when the text comes back unchanged. */
export async function edit(ctx: Ctx, path: string, fn: (text: string) => string | Promise<string>): Promise<Change[]> {
  const text = await readText(ctx.g, path);
  if (text === null) throw new Error(`edit: ${path} is not a file in the guest`);
  const updated = await fn(text);
  if (typeof updated !== 'string') throw new Error(`edit: the function for ${path} must return the new text`);
  const changes: Change[] = [];
  if (updated !== text) {
    await writeText(ctx.g, path, updated);
    note(ctx, changes, { op: 'edit', action: 'modified', path });
  }
  return changes;
}

/** Uploads a host file (relative paths are beside the recipe) to a guest path. */
export async function upload(ctx: Ctx, hostPath: string, guestPath: string): Promise<Change[]> {
  const existed = await ctx.g.exists(guestPath);
  await ctx.g.upload(hostPath, guestPath);
  const changes: Change[] = [];
  note(ctx, changes, { op: 'upload', action: existed ? 'modified' : 'created', path: guestPath, detail: `from ${hostPath}` });
  return changes;
}

/** Copies a host file or directory tree (beside the recipe) into a guest directory. */
export async function copyIn(ctx: Ctx, hostPath: string, guestDir: string): Promise<Change[]> {
  await ctx.g.copyIn(hostPath, guestDir);
  const base = hostPath.replace(/\/+$/, '').split('/').pop()!;
  const changes: Change[] = [];
  note(ctx, changes, { op: 'copy-in', action: 'created', path: `${guestDir.replace(/\/$/, '')}/${base}` });
  return changes;
}

export async function mkdir(ctx: Ctx, path: string): Promise<Change[]> {
  const changes: Change[] = [];
  if (await ctx.g.isDir(path)) return changes;
  await ctx.g.mkdirP(path);
  note(ctx, changes, { op: 'mkdir', action: 'created', path });
  return changes;
}

export async function chmod(ctx: Ctx, mode: number, path: string): Promise<Change[]> {
  const before = Number((await ctx.g.statns(path)).st_mode & 0o7777n);
  const changes: Change[] = [];
  if (before === mode) return changes;
  await ctx.g.chmod(mode, path);
  note(ctx, changes, { op: 'chmod', action: 'modified', path, detail: `${before.toString(8)} → ${mode.toString(8)}` });
  return changes;
}

/** Changes owner and group; names are looked up in the guest's /etc/passwd and /etc/group. */
export async function chown(ctx: Ctx, owner: number | string, group: number | string, path: string): Promise<Change[]> {
  const uid = typeof owner === 'number' ? owner : await lookupId(ctx, '/etc/passwd', owner);
  const gid = typeof group === 'number' ? group : await lookupId(ctx, '/etc/group', group);
  await ctx.g.chown(uid, gid, path);
  const changes: Change[] = [];
  note(ctx, changes, { op: 'chown', action: 'modified', path, detail: `${uid}:${gid}` });
  return changes;
}

async function lookupId(ctx: Ctx, file: string, name: string): Promise<number> {
  const text = (await readText(ctx.g, file)) ?? '';
  for (const l of text.split('\n')) {
    const f = l.split(':');
    if (f[0] === name && f[2] !== undefined) return Number(f[2]);
  }
  throw new Error(`chown: '${name}' is not in the guest's ${file}`);
}

/** Symbolic links: each linkname → target (as virt-customize --link TARGET:LINK[:LINK…]). */
export async function link(ctx: Ctx, target: string, ...linknames: string[]): Promise<Change[]> {
  const changes: Change[] = [];
  for (const l of linknames) {
    await ctx.g.lnSf(target, l);
    note(ctx, changes, { op: 'link', action: 'created', path: l, detail: `→ ${target}` });
  }
  return changes;
}

/** Deletes a file or directory tree (no error when missing). */
export async function remove(ctx: Ctx, path: string): Promise<Change[]> {
  const changes: Change[] = [];
  if (!(await ctx.g.exists(path)) && !(await ctx.g.isSymlink(path))) return changes;
  await ctx.g.rmRf(path);
  note(ctx, changes, { op: 'delete', action: 'removed', path });
  return changes;
}
export { remove as delete_ };

export async function truncate(ctx: Ctx, path: string): Promise<Change[]> {
  await ctx.g.truncate(path);
  const changes: Change[] = [];
  note(ctx, changes, { op: 'truncate', action: 'truncated', path });
  return changes;
}

export async function touch(ctx: Ctx, path: string): Promise<Change[]> {
  const existed = await ctx.g.exists(path);
  await ctx.g.touch(path);
  const changes: Change[] = [];
  note(ctx, changes, { op: 'touch', action: existed ? 'modified' : 'created', path });
  return changes;
}

export async function copy(ctx: Ctx, src: string, dest: string): Promise<Change[]> {
  await ctx.g.cpA(src, dest);
  const changes: Change[] = [];
  note(ctx, changes, { op: 'copy', action: 'created', path: dest, detail: `from ${src}` });
  return changes;
}

export async function move(ctx: Ctx, src: string, dest: string): Promise<Change[]> {
  await ctx.g.mv(src, dest);
  const changes: Change[] = [];
  note(ctx, changes, { op: 'move', action: 'modified', path: dest, detail: `from ${src}` });
  return changes;
}

/** Runs a shell command in the guest (chrooted by the daemon, with /dev, /proc and /sys available); returns its output. */
export async function runCommand(ctx: Ctx, cmd: string): Promise<string> {
  ctx.log?.(`run-command: ${cmd}`);
  const out = await ctx.g.sh(cmd);
  if (out) ctx.log?.(out.replace(/\n$/, ''));
  return out;
}

/** Uploads a host script (beside the recipe), runs it in the guest, removes it; returns its output. */
export async function run(ctx: Ctx, hostScript: string): Promise<string> {
  const { g } = ctx;
  const tmp = tmpName('run');
  await g.upload(hostScript, tmp);
  try {
    await g.chmod(0o700, tmp);
    ctx.log?.(`run: ${hostScript}`);
    const out = await g.sh(tmp);
    if (out) ctx.log?.(out.replace(/\n$/, ''));
    return out;
  } finally {
    await g.rmF(tmp);
  }
}

/** Schedules an SELinux relabel at next boot on guests that use SELinux. */
export async function selinuxRelabel(ctx: Ctx): Promise<Change[]> {
  const changes: Change[] = [];
  if (!(await ctx.g.isFile('/etc/selinux/config'))) return changes;
  await ctx.g.touch('/.autorelabel');
  note(ctx, changes, { op: 'selinux-relabel', action: 'created', path: '/.autorelabel' });
  return changes;
}

/** Scrubs a regular file (overwrites its data with the daemon's scrub) and removes it; nothing to do when missing. */
export async function scrub(ctx: Ctx, path: string): Promise<Change[]> {
  const { g } = ctx;
  const changes: Change[] = [];
  if (await g.isSymlink(path)) throw new Error(`scrub: ${path} is a symbolic link (scrub only takes regular files)`);
  if (await g.isDir(path)) throw new Error(`scrub: ${path} is a directory (scrub only takes regular files)`);
  if (!(await g.exists(path))) return changes;
  await g.scrubFile(path);
  note(ctx, changes, { op: 'scrub', action: 'removed', path, detail: 'scrubbed' });
  return changes;
}

/** Truncates every regular file under a directory (or the one file) to zero length; reports those that had content. */
export async function truncateRecursive(ctx: Ctx, path: string): Promise<Change[]> {
  const { g } = ctx;
  const changes: Change[] = [];
  if (!(await g.isDir(path))) {
    if (!(await g.isFile(path))) throw new Error(`truncate-recursive: ${path} does not exist in the guest`);
    await truncateFile(ctx, changes, 'truncate-recursive', path);
    return changes;
  }
  const root = path.replace(/\/+$/, '') || '/';
  for (const rel of await g.find(root)) {
    const p = `${root === '/' ? '' : root}/${rel.replace(/^\//, '')}`;
    if (!(await g.isSymlink(p)) && (await g.isFile(p))) await truncateFile(ctx, changes, 'truncate-recursive', p);
  }
  return changes;
}

// ---- The ready recipe: virt-customize's options as params, run in the order given.

const splitOnce = (v: string, what: string): [string, string] => {
  const i = v.indexOf(':');
  if (i < 0) throw new Error(`${what}: expected A:B, got '${v}'`);
  return [v.slice(0, i), v.slice(i + 1)];
};

const flag = (v: string): boolean => !/^(0|false|no|off)$/i.test(v);

/** The customize recipe's params: virt-customize's options (sysprep's customize step takes the same). */
export const params = {
  hostname: { description: 'set the hostname' },
  timezone: { description: 'set the timezone (an Area/City name)' },
  'root-password': { description: "root's password: password:PW, file:FILE, random, disabled, locked or locked:SELECTOR" },
  password: { description: "USER:SELECTOR, a user's password (selectors as for root-password)" },
  'password-crypto': { description: 'how passwords are hashed', values: ['md5', 'sha256', 'sha512', 'yescrypt'] },
  'ssh-inject': { description: 'USER:KEY, USER:file:FILE or USER:string:KEY, an authorized key' },
  write: { description: 'FILE:CONTENT, write a file' },
  'append-line': { description: 'FILE:LINE, append a line to a file' },
  mkdir: { description: 'create a directory (and its parents)' },
  chmod: { description: 'MODE:FILE, change permissions (octal mode)' },
  copy: { description: 'SOURCE:DEST, copy within the guest' },
  move: { description: 'SOURCE:DEST, move within the guest' },
  link: { description: 'TARGET:LINK[:LINK…], create symbolic links' },
  delete: { description: 'delete a file or directory, recursively' },
  scrub: { description: 'scrub a file' },
  truncate: { description: 'truncate a file to zero length' },
  'truncate-recursive': { description: 'truncate every file under a directory' },
  touch: { description: 'create a file or update its times' },
  upload: { description: 'FILE:DEST, upload a host file (beside the recipe)' },
  'copy-in': { description: 'LOCALPATH:REMOTEDIR, copy a host tree in' },
  run: { description: 'run a host script (beside the recipe) in the guest' },
  'run-command': { description: 'run a command in the guest' },
  install: { description: 'PKG,PKG…, install packages with the guest\'s package manager (needs --network)' },
  update: { description: 'update every package (needs --network)', type: 'boolean' },
  uninstall: { description: 'PKG,PKG…, remove packages' },
  firstboot: { description: 'a host script to run at the first boot' },
  'firstboot-command': { description: 'a command to run at the first boot' },
  'firstboot-install': { description: 'PKG,PKG…, packages to install at the first boot' },
  'selinux-relabel': { description: 'relabel the filesystem at the next boot', type: 'boolean' },
} as const satisfies RecipeParamSpecs;

/** The customize recipe's param names. */
export const CUSTOMIZE_PARAMS: readonly string[] = Object.keys(params);

/**
 * Applies virt-customize-style params in the order they were given (one of
 * each; a recipe in code does the rest). Unknown names are an error.
 */
export async function customizeFromParams(ctx: Ctx, params: Readonly<Record<string, string>>): Promise<Change[]> {
  const changes: Change[] = [];
  const crypto = params['password-crypto'] as PasswordCrypto | undefined;
  if (crypto !== undefined && !(crypto in CHPASSWD_METHOD)) throw new Error(`password-crypto: '${crypto}' is not one of ${Object.keys(CHPASSWD_METHOD).join(', ')}`);
  const add = (cs: Change[]): void => {
    changes.push(...cs);
  };
  for (const [k, v] of Object.entries(params)) {
    switch (k) {
      case 'hostname': add(await hostname(ctx, v)); break;
      case 'timezone': add(await timezone(ctx, v)); break;
      case 'root-password': add(await rootPassword(ctx, parsePasswordSelector(v, crypto))); break;
      case 'password': {
        const [user, sel] = splitOnce(v, 'password=USER:SELECTOR');
        add(await password(ctx, user, parsePasswordSelector(sel, crypto)));
        break;
      }
      case 'password-crypto': break;
      case 'ssh-inject': {
        const [user, key] = splitOnce(v, 'ssh-inject=USER:KEY (or USER:file:FILE, USER:string:KEY)');
        add(await sshInject(ctx, user, key.startsWith('file:') ? { file: key.slice(5) } : key.startsWith('string:') ? key.slice(7) : key));
        break;
      }
      case 'write': { const [f, c] = splitOnce(v, 'write=FILE:CONTENT'); add(await write(ctx, f, c)); break; }
      case 'append-line': { const [f, l] = splitOnce(v, 'append-line=FILE:LINE'); add(await appendLine(ctx, f, l)); break; }
      case 'mkdir': add(await mkdir(ctx, v)); break;
      case 'chmod': {
        const [m, f] = splitOnce(v, 'chmod=MODE:FILE');
        if (!/^0?[0-7]{1,4}$/.test(m)) throw new Error(`chmod: '${m}' is not an octal mode`);
        add(await chmod(ctx, parseInt(m, 8), f));
        break;
      }
      case 'copy': { const [a, b] = splitOnce(v, 'copy=SOURCE:DEST'); add(await copy(ctx, a, b)); break; }
      case 'move': { const [a, b] = splitOnce(v, 'move=SOURCE:DEST'); add(await move(ctx, a, b)); break; }
      case 'link': { const [t, ls] = splitOnce(v, 'link=TARGET:LINK[:LINK…]'); add(await link(ctx, t, ...ls.split(':'))); break; }
      case 'delete': add(await remove(ctx, v)); break;
      case 'scrub': add(await scrub(ctx, v)); break;
      case 'truncate': add(await truncate(ctx, v)); break;
      case 'truncate-recursive': add(await truncateRecursive(ctx, v)); break;
      case 'touch': add(await touch(ctx, v)); break;
      case 'upload': { const [a, b] = splitOnce(v, 'upload=FILE:DEST'); add(await upload(ctx, a, b)); break; }
      case 'copy-in': { const [a, b] = splitOnce(v, 'copy-in=LOCALPATH:REMOTEDIR'); add(await copyIn(ctx, a, b)); break; }
      case 'run': add(ranChange('run', await run(ctx, v), v)); break;
      case 'run-command': add(ranChange('run-command', await runCommand(ctx, v), v)); break;
      case 'install': add(await install(ctx, v)); break;
      case 'update': if (flag(v)) add(await update(ctx)); break;
      case 'uninstall': add(await uninstall(ctx, v)); break;
      case 'firstboot': add(await firstboot.addHostScript(ctx, v)); break;
      case 'firstboot-command': add(await firstboot.addCommand(ctx, v)); break;
      case 'firstboot-install': add(await firstbootInstall(ctx, v)); break;
      case 'selinux-relabel': if (flag(v)) add(await selinuxRelabel(ctx)); break;
      default: throw new Error(`guestsh/customize: unknown param '${k}' (known: ${CUSTOMIZE_PARAMS.join(', ')})`);
    }
  }
  return changes;
}

function ranChange(op: string, _out: string, what: string): Change[] {
  return [{ op, action: 'ran', path: what }];
}

/**
 * As a ready recipe (`guestsh run -a IMG -i guestsh/customize --param hostname=web1 …`):
 * virt-customize's options as params, applied in the order given. See
 * CUSTOMIZE_PARAMS and src/stdlib/README.md.
 */
export default async function recipe(ctx: RecipeCtx): Promise<Change[]> {
  await ensureMounted(ctx);
  return customizeFromParams(ctx, ctx.params);
}
