// Hardening steps for Linux guests. Each reports exactly what it changed,
// with the value before and after, and changes nothing that already
// complies (so a second run reports no changes).

import type { RecipeParamSpecs } from '../spec/values.js';
import { type Change, type Ctx, ensureMounted, entries, glob, listParam, note, type RecipeCtx, readText, writeText } from './util.js';

export type { Change, Ctx } from './util.js';

export const STRONG_CIPHERS = ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'];
export const STRONG_MACS = ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'umac-128-etm@openssh.com'];
export const STRONG_KEX = ['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group-exchange-sha256'];

export interface SshHardeningOptions {
  /** PermitRootLogin value; default "prohibit-password" (keys only). Use "no" to forbid root entirely. */
  permitRootLogin?: 'prohibit-password' | 'no' | undefined;
  /** Turn password authentication off (default true). */
  disablePasswords?: boolean | undefined;
  ciphers?: string[] | undefined;
  macs?: string[] | undefined;
  kexAlgorithms?: string[] | undefined;
  /** Extra directives, e.g. { X11Forwarding: 'no', MaxAuthTries: '3' }. */
  extra?: Record<string, string> | undefined;
}

const SSHD_CONFIG = '/etc/ssh/sshd_config';
const MARK = '# guestsh hardening (first value wins in sshd_config, so these come first)';

/**
 * SSH server: no root login by password, no password (or keyboard-interactive)
 * authentication, strong ciphers, MACs and key exchange only. The settings
 * go at the top of sshd_config, before any Include or Match (sshd keeps the
 * first value it reads); conflicting lines further down are commented out.
 */
export async function sshHardening(ctx: Ctx, opts: SshHardeningOptions = {}): Promise<Change[]> {
  const { g } = ctx;
  const changes: Change[] = [];
  const text = await readText(g, SSHD_CONFIG);
  if (text === null) {
    ctx.log?.('ssh-hardening: no /etc/ssh/sshd_config in the guest; nothing to do');
    return changes;
  }
  const pwOff = opts.disablePasswords ?? true;
  const want: [string, string][] = [
    ['PermitRootLogin', opts.permitRootLogin ?? 'prohibit-password'],
    ...(pwOff ? ([['PasswordAuthentication', 'no'], ['KbdInteractiveAuthentication', 'no'], ['PermitEmptyPasswords', 'no']] as [string, string][]) : []),
    ['Ciphers', (opts.ciphers ?? STRONG_CIPHERS).join(',')],
    ['MACs', (opts.macs ?? STRONG_MACS).join(',')],
    ['KexAlgorithms', (opts.kexAlgorithms ?? STRONG_KEX).join(',')],
    ...Object.entries(opts.extra ?? {}),
  ];
  const keys = new Set(want.map(([k]) => k.toLowerCase()));
  // ChallengeResponseAuthentication is the older name of KbdInteractiveAuthentication.
  if (pwOff) keys.add('challengeresponseauthentication');

  const lines = text.split('\n');
  // Drop a previous guestsh block (we rewrite it), remembering its values as "before".
  const before = new Map<string, string>();
  let start = lines.indexOf(MARK);
  if (start >= 0) {
    let end = start + 1;
    while (end < lines.length && lines[end]!.trim() !== '' && !lines[end]!.startsWith('#')) {
      const [k, ...v] = lines[end]!.trim().split(/\s+/);
      before.set(k!.toLowerCase(), v.join(' '));
      end++;
    }
    lines.splice(start, end - start + (lines[end]?.trim() === '' ? 1 : 0));
  }
  let inMatch = false;
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!.trim();
    if (/^match\s/i.test(t)) inMatch = true;
    if (inMatch || !t || t.startsWith('#')) continue;
    const [k, ...v] = t.split(/\s+/);
    const key = k!.toLowerCase();
    if (!keys.has(key)) continue;
    if (!before.has(key)) before.set(key, v.join(' '));
    lines[i] = `# ${lines[i]}  # disabled by guestsh hardening`;
  }
  // Drop-in files are read where the Include stands; ours precede it, so they only need a report.
  for (const f of await glob(g, '/etc/ssh/sshd_config.d/*.conf')) {
    const dt = (await readText(g, f)) ?? '';
    for (const l of dt.split('\n')) {
      const [k, ...v] = l.trim().split(/\s+/);
      if (k && keys.has(k.toLowerCase()) && !before.has(k.toLowerCase())) before.set(k.toLowerCase(), `${v.join(' ')} (in ${f})`);
    }
  }
  const block = [MARK, ...want.map(([k, v]) => `${k} ${v}`), ''];
  const updated = [...block, ...lines].join('\n');
  if (updated === text) return changes;
  await writeText(g, SSHD_CONFIG, updated);
  for (const [k, v] of want) {
    const old = before.get(k.toLowerCase());
    if (old === v) continue;
    note(ctx, changes, { op: 'ssh-hardening', action: 'modified', path: SSHD_CONFIG, detail: `${k}: ${old ?? '(default)'} → ${v}` });
  }
  if (changes.length === 0) note(ctx, changes, { op: 'ssh-hardening', action: 'modified', path: SSHD_CONFIG, detail: 'rewritten (same values)' });
  return changes;
}

/** Network sysctls: no redirects or source routing, reverse-path filtering, SYN cookies, martian logging. */
export const NETWORK_SYSCTLS: Record<string, string> = {
  'net.ipv4.conf.all.accept_redirects': '0',
  'net.ipv4.conf.default.accept_redirects': '0',
  'net.ipv4.conf.all.secure_redirects': '0',
  'net.ipv4.conf.default.secure_redirects': '0',
  'net.ipv4.conf.all.send_redirects': '0',
  'net.ipv4.conf.default.send_redirects': '0',
  'net.ipv4.conf.all.accept_source_route': '0',
  'net.ipv4.conf.default.accept_source_route': '0',
  'net.ipv4.conf.all.rp_filter': '1',
  'net.ipv4.conf.default.rp_filter': '1',
  'net.ipv4.conf.all.log_martians': '1',
  'net.ipv4.conf.default.log_martians': '1',
  'net.ipv4.icmp_echo_ignore_broadcasts': '1',
  'net.ipv4.icmp_ignore_bogus_error_responses': '1',
  'net.ipv4.tcp_syncookies': '1',
  'net.ipv6.conf.all.accept_redirects': '0',
  'net.ipv6.conf.default.accept_redirects': '0',
  'net.ipv6.conf.all.accept_source_route': '0',
  'net.ipv6.conf.default.accept_source_route': '0',
  'net.ipv6.conf.all.accept_ra': '0',
  'net.ipv6.conf.default.accept_ra': '0',
};

export const SYSCTL_FILE = '/etc/sysctl.d/90-guestsh-network-hardening.conf';

/** Writes the network sysctls into their own sysctl.d file (read late, so it wins). Reports each key that changed. */
export async function sysctlHardening(ctx: Ctx, settings: Record<string, string> = NETWORK_SYSCTLS): Promise<Change[]> {
  const { g } = ctx;
  const changes: Change[] = [];
  // Current values from the guest's sysctl configuration (last assignment wins, as sysctl --system reads them).
  const current = new Map<string, string>();
  const files = [...(await glob(g, '/usr/lib/sysctl.d/*.conf')), ...(await glob(g, '/etc/sysctl.d/*.conf')), '/etc/sysctl.conf'];
  for (const f of files) {
    if (f === SYSCTL_FILE) continue;
    for (const l of ((await readText(g, f)) ?? '').split('\n')) {
      const m = /^\s*([\w.\/-]+)\s*=\s*(.*?)\s*$/.exec(l);
      if (m && !l.trim().startsWith('#') && !l.trim().startsWith(';')) current.set(m[1]!.replace(/\//g, '.'), m[2]!);
    }
  }
  const text = `# Network hardening written by guestsh.\n${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`;
  const old = await readText(g, SYSCTL_FILE);
  if (old === text) return changes;
  const oldValues = new Map<string, string>();
  for (const l of (old ?? '').split('\n')) {
    const m = /^\s*([\w.]+)\s*=\s*(.*?)\s*$/.exec(l);
    if (m) oldValues.set(m[1]!, m[2]!);
  }
  await g.mkdirP('/etc/sysctl.d');
  await g.write(SYSCTL_FILE, text);
  await g.chmod(0o644, SYSCTL_FILE);
  for (const [k, v] of Object.entries(settings)) {
    const was = oldValues.get(k) ?? current.get(k);
    if (was === v) continue;
    note(ctx, changes, { op: 'sysctl-hardening', action: old === null ? 'created' : 'modified', path: SYSCTL_FILE, detail: `${k}: ${was ?? '(kernel default)'} → ${v}` });
  }
  return changes;
}

interface PermRule {
  glob: string;
  /** Bits that must be cleared. */
  clear: number;
  /** Owner and group to enforce (numbers or names looked up in the guest), when set. */
  owner?: string;
  group?: string;
}

/** Permission rules: sensitive files lose group/other bits they should not have. */
export const PERMISSION_RULES: PermRule[] = [
  { glob: '/etc/passwd', clear: 0o7133 },
  { glob: '/etc/group', clear: 0o7133 },
  { glob: '/etc/passwd-', clear: 0o7133 },
  { glob: '/etc/group-', clear: 0o7133 },
  { glob: '/etc/shadow', clear: 0o7137, owner: 'root' },
  { glob: '/etc/gshadow', clear: 0o7137, owner: 'root' },
  { glob: '/etc/shadow-', clear: 0o7137, owner: 'root' },
  { glob: '/etc/gshadow-', clear: 0o7137, owner: 'root' },
  { glob: '/etc/ssh/sshd_config', clear: 0o7177 },
  { glob: '/etc/ssh/ssh_host_*_key', clear: 0o7177, owner: 'root' },
  { glob: '/etc/ssh/ssh_host_*_key.pub', clear: 0o7133 },
  { glob: '/etc/crontab', clear: 0o7177, owner: 'root' },
  { glob: '/etc/cron.d', clear: 0o7077, owner: 'root' },
  { glob: '/etc/cron.hourly', clear: 0o7077, owner: 'root' },
  { glob: '/etc/cron.daily', clear: 0o7077, owner: 'root' },
  { glob: '/etc/cron.weekly', clear: 0o7077, owner: 'root' },
  { glob: '/etc/cron.monthly', clear: 0o7077, owner: 'root' },
  { glob: '/etc/sudoers', clear: 0o7137 },
  { glob: '/etc/sudoers.d/*', clear: 0o7137 },
  { glob: '/root', clear: 0o7077 },
  { glob: '/boot/grub/grub.cfg', clear: 0o7177 },
  { glob: '/boot/grub2/grub.cfg', clear: 0o7177 },
];

/** Tightens modes of sensitive files, home directories (no group/other write) and removes world-writable bits in /etc. */
export async function permissionFixes(ctx: Ctx, rules: PermRule[] = PERMISSION_RULES): Promise<Change[]> {
  const { g } = ctx;
  const changes: Change[] = [];
  const fix = async (path: string, clear: number, owner?: string): Promise<void> => {
    if (await g.isSymlink(path)) return;
    const st = await g.statns(path);
    const mode = Number(st.st_mode & 0o7777n);
    const isDir = (st.st_mode & 0o170000n) === 0o040000n;
    // Directories keep the sticky bit; execute bits are only cleared where the rule says.
    const next = mode & ~(isDir ? clear & ~0o1000 : clear);
    if (next !== mode) {
      await g.chmod(next, path);
      note(ctx, changes, { op: 'permissions', action: 'modified', path, detail: `mode ${mode.toString(8).padStart(4, '0')} → ${next.toString(8).padStart(4, '0')}` });
    }
    if (owner === 'root' && st.st_uid !== 0n) {
      await g.chown(0, Number(st.st_gid), path);
      note(ctx, changes, { op: 'permissions', action: 'modified', path, detail: `owner ${st.st_uid} → 0` });
    }
  };
  for (const r of rules) for (const p of await glob(g, r.glob)) await fix(p, r.clear, r.owner);
  // Home directories: nobody else may write into them.
  for (const h of await glob(g, '/home/*')) if (await g.isDir(h)) await fix(h, 0o0022);
  // World-writable files in /etc (never legitimate).
  for (const p of await entries(g, '/etc')) {
    if (await g.isSymlink(p)) continue;
    const st = await g.statns(p);
    if ((st.st_mode & 0o170000n) === 0o100000n && (st.st_mode & 0o002n) !== 0n) await fix(p, 0o002);
  }
  return changes;
}

export interface HardenOptions {
  ssh?: SshHardeningOptions | false | undefined;
  sysctl?: Record<string, string> | false | undefined;
  permissions?: PermRule[] | false | undefined;
}

/** Every hardening step; returns the combined report. */
export async function harden(ctx: Ctx, opts: HardenOptions = {}): Promise<Change[]> {
  const changes: Change[] = [];
  if (opts.ssh !== false) changes.push(...(await sshHardening(ctx, opts.ssh ?? {})));
  if (opts.sysctl !== false) changes.push(...(await sysctlHardening(ctx, opts.sysctl ?? NETWORK_SYSCTLS)));
  if (opts.permissions !== false) changes.push(...(await permissionFixes(ctx, opts.permissions ?? PERMISSION_RULES)));
  return changes;
}

/** The hardening recipe's params. */
export const params: RecipeParamSpecs = {
  steps: { description: 'which steps to run: ssh, sysctl, permissions (comma-separated)', type: 'list', default: 'ssh,sysctl,permissions' },
  'permit-root-login': { description: "sshd's PermitRootLogin", values: ['no', 'prohibit-password'], default: 'prohibit-password' },
};

/** As a ready recipe: params steps=ssh,sysctl,permissions (default all), permit-root-login=no. */
export default async function recipe(ctx: RecipeCtx): Promise<Change[]> {
  await ensureMounted(ctx);
  const steps = new Set(listParam(ctx.params['steps']) ?? ['ssh', 'sysctl', 'permissions']);
  const prl = ctx.params['permit-root-login'];
  return harden(ctx, {
    ssh: steps.has('ssh') ? { permitRootLogin: prl === 'no' ? 'no' : 'prohibit-password' } : false,
    sysctl: steps.has('sysctl') ? undefined : false,
    permissions: steps.has('permissions') ? undefined : false,
  });
}
