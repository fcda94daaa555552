// virt-customize's file and system operations as typed functions over a
// mounted guest. Each returns what it changed. Commands run inside the guest
// through the daemon (`sh` / `command`), as virt-customize's --run-command does.

import { type Change, type Ctx, ensureMounted, note, passwd, type RecipeCtx, readText, shq, writeText } from './util.js';

export type { Change, Ctx } from './util.js';

const tmpName = (what: string): string => `/tmp/.guestsh-${what}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

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

export type PasswordSpec =
  | { password: string; locked?: boolean }
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

/**
 * Sets a user's password. A plain password is hashed inside the guest by its
 * own chpasswd (so in the method the guest's PAM / login.defs configure, e.g.
 * yescrypt on Debian 12); `hash` stores a ready crypt(3) string; `disabled`
 * makes password login impossible; `locked` adds "!" in front of the hash.
 */
export async function password(ctx: Ctx, user: string, spec: PasswordSpec): Promise<Change[]> {
  const { g } = ctx;
  if (!(await passwd(g)).some((u) => u.name === user)) throw new Error(`password: no user '${user}' in the guest`);
  const changes: Change[] = [];
  if ('password' in spec) {
    if (/[\n:]/.test(user) || /\n/.test(spec.password)) throw new Error('password: user names and passwords cannot contain newlines (or colons in names)');
    const file = tmpName('pw');
    await g.write(file, `${user}:${spec.password}\n`);
    try {
      await g.chmod(0o600, file);
      await g.sh(`chpasswd < ${shq(file)}`);
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
  const kind = 'password' in spec ? 'set' : 'hash' in spec ? 'hash set' : 'disabled' in spec ? 'disabled' : '';
  note(ctx, changes, { op: 'password', action: 'modified', path: '/etc/shadow', detail: `${user}: ${[kind, 'locked' in spec && spec.locked ? 'locked' : ''].filter(Boolean).join(', ')}` });
  return changes;
}

export const rootPassword = (ctx: Ctx, spec: PasswordSpec): Promise<Change[]> => password(ctx, 'root', spec);

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

/**
 * As a ready recipe: params hostname=, timezone=, root-password= (password:X,
 * disabled, locked), ssh-inject=USER:KEY.
 */
export default async function recipe(ctx: RecipeCtx): Promise<Change[]> {
  await ensureMounted(ctx);
  const p = ctx.params;
  const changes: Change[] = [];
  if (p['hostname']) changes.push(...(await hostname(ctx, p['hostname'])));
  if (p['timezone']) changes.push(...(await timezone(ctx, p['timezone'])));
  const rp = p['root-password'];
  if (rp) {
    const spec: PasswordSpec = rp === 'disabled' ? { disabled: true } : rp === 'locked' ? { locked: true } : rp.startsWith('password:') ? { password: rp.slice(9) } : { password: rp };
    changes.push(...(await rootPassword(ctx, spec)));
  }
  const si = p['ssh-inject'];
  if (si) {
    const i = si.indexOf(':');
    if (i < 0) throw new Error('ssh-inject=USER:KEY');
    changes.push(...(await sshInject(ctx, si.slice(0, i), si.slice(i + 1))));
  }
  return changes;
}
