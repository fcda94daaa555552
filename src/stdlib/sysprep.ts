// virt-sysprep's operations for Linux guests, each a typed function over a
// mounted guest. `sysprep(ctx)` runs virt-sysprep's default set; pass
// `operations` to choose, or `enable` / `disable` to adjust the default.
// Every operation returns what it changed.

import {
  type Change,
  type Ctx,
  entries,
  ensureMounted,
  glob,
  homeDirs,
  listParam,
  note,
  passwd,
  type RecipeCtx,
  readText,
  removeGlob,
  removePath,
  truncateFile,
  writeText,
} from './util.js';

import { CUSTOMIZE_PARAMS, customizeFromParams, params as customizeParams } from './customize.js';
import type { RecipeParamSpecs } from '../spec/values.js';

export type { Change, Ctx } from './util.js';

export interface SysprepOptions {
  /** Exactly these operations (names as in virt-sysprep --operations). */
  operations?: string[] | undefined;
  /** Added to the default set. */
  enable?: string[] | undefined;
  /** Removed from the set. */
  disable?: string[] | undefined;
  /** user-account: keep these users (names). */
  keepUserAccounts?: string[] | undefined;
  /** user-account: remove only these users (names); default every login user (uid in UID_MIN..UID_MAX). */
  removeUserAccounts?: string[] | undefined;
  /**
   * customize: what virt-sysprep's embedded customize options do, as code
   * (compose guestsh/customize functions). Runs after the removal operations
   * so that none of them undoes it.
   */
  customize?: ((ctx: Ctx) => Promise<Change[]>) | undefined;
}

type OpFn = (ctx: Ctx, changes: Change[], opts: SysprepOptions) => Promise<void>;

interface Operation {
  name: string;
  /** In virt-sysprep's default set. */
  isDefault: boolean;
  description: string;
  run: OpFn;
}

/** Removes each glob's matches (whole trees). */
const globs = (op: string, patterns: string[], mode: 'all' | 'files' = 'all'): OpFn =>
  async (ctx, changes) => {
    for (const p of patterns) await removeGlob(ctx, changes, op, p, mode);
  };

/** Empties a directory (dot files included), keeping the directory itself. */
async function emptyDir(ctx: Ctx, changes: Change[], op: string, dir: string): Promise<void> {
  for (const e of await entries(ctx.g, dir)) await removePath(ctx, changes, op, e, 'all');
}

/** Deletes the lines matching `re` from the files the glob matches. */
async function dropLines(ctx: Ctx, changes: Change[], op: string, pattern: string, re: RegExp): Promise<void> {
  for (const f of await glob(ctx.g, pattern)) {
    const text = await readText(ctx.g, f);
    if (text === null) continue;
    const lines = text.split('\n');
    const kept = lines.filter((l) => !re.test(l));
    if (kept.length === lines.length) continue;
    await writeText(ctx.g, f, kept.join('\n'));
    note(ctx, changes, { op, action: 'modified', path: f, detail: `${lines.length - kept.length} line(s) removed` });
  }
}

const LOGFILES = [
  '/var/log/*.log*', '/var/log/audit/*', '/var/log/btmp*', '/var/log/cron*', '/var/log/dmesg*',
  '/var/log/lastlog*', '/var/log/maillog*', '/var/log/mail/*', '/var/log/messages*', '/var/log/secure*',
  '/var/log/spooler*', '/var/log/tallylog*', '/var/log/wtmp*', '/var/log/syslog*', '/var/log/debug*',
  '/var/log/faillog*', '/var/log/kern.log*', '/var/log/auth.log*', '/var/log/daemon.log*', '/var/log/user.log*',
  '/var/log/apt/*', '/var/log/aptitude*', '/var/log/installer/*', '/var/log/unattended-upgrades/*',
  '/var/log/exim4/*', '/var/log/apache2/*', '/var/log/httpd/*', '/var/log/nginx/*', '/var/log/cups/*',
  '/var/log/ntpstats/*', '/var/log/chrony/*', '/var/log/sa/*', '/var/log/journal/*', '/var/log/private/*',
  '/var/log/anaconda/*', '/var/log/anaconda.*', '/var/log/ConsoleKit/*', '/var/log/landscape/*',
  '/var/log/gdm/*', '/var/log/lightdm/*', '/var/log/Xorg.*.log*', '/var/log/xferlog*', '/var/log/firewalld*',
  '/var/log/grubby*', '/var/log/tuned/*', '/var/log/libvirt/*', '/var/log/squid/*', '/var/log/ppp/*',
  '/var/log/setroubleshoot/*', '/var/log/rhsm/*', '/var/log/cloud-init*', '/var/log/dnf*', '/var/log/yum.log*',
  '/var/log/hawkey.log*', '/var/log/README', '/var/named/data/named.run',
  '/root/anaconda-ks.cfg', '/root/anaconda-post.log', '/root/original-ks.cfg', '/root/install.log*',
  '/var/cache/gdm/*', '/var/lib/AccountsService/users/*', '/var/lib/fprint/*', '/var/lib/logrotate.status',
  '/var/lib/logrotate/*',
];

async function loginDefs(ctx: Ctx): Promise<{ uidMin: number; uidMax: number }> {
  const text = (await readText(ctx.g, '/etc/login.defs')) ?? '';
  const get = (k: string, d: number): number => {
    const m = new RegExp(`^\\s*${k}\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : d;
  };
  return { uidMin: get('UID_MIN', 1000), uidMax: get('UID_MAX', 60000) };
}

/** Removes the named users' lines from a colon-separated account file. */
async function dropAccounts(ctx: Ctx, changes: Change[], file: string, names: Set<string>, memberField: number | null): Promise<void> {
  const text = await readText(ctx.g, file);
  if (text === null) return;
  let changed = 0;
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (line && names.has(f[0]!)) {
      changed++;
      continue;
    }
    if (memberField !== null && f.length > memberField) {
      const members = f[memberField]!.split(',').filter(Boolean);
      const kept = members.filter((m) => !names.has(m));
      if (kept.length !== members.length) {
        f[memberField] = kept.join(',');
        changed++;
        out.push(f.join(':'));
        continue;
      }
    }
    out.push(line);
  }
  if (!changed) return;
  await writeText(ctx.g, file, out.join('\n'));
  note(ctx, changes, { op: 'user-account', action: 'modified', path: file, detail: `${changed} line(s)` });
}

async function userAccount(ctx: Ctx, changes: Change[], opts: SysprepOptions): Promise<void> {
  const { uidMin, uidMax } = await loginDefs(ctx);
  const keep = new Set(opts.keepUserAccounts ?? []);
  const only = opts.removeUserAccounts ? new Set(opts.removeUserAccounts) : null;
  const victims = (await passwd(ctx.g)).filter(
    (u) => u.uid >= uidMin && u.uid <= uidMax && u.name !== 'nobody' && !keep.has(u.name) && (!only || only.has(u.name)),
  );
  if (victims.length === 0) return;
  const names = new Set(victims.map((u) => u.name));
  for (const u of victims) {
    if (u.home.startsWith('/home/') && (await ctx.g.isDir(u.home))) await removePath(ctx, changes, 'user-account', u.home);
    for (const spool of [`/var/spool/mail/${u.name}`, `/var/mail/${u.name}`]) await removePath(ctx, changes, 'user-account', spool);
  }
  await dropAccounts(ctx, changes, '/etc/passwd', names, null);
  await dropAccounts(ctx, changes, '/etc/shadow', names, null);
  // Each user's own group goes too when it is named after the user; memberships are dropped everywhere.
  await dropAccounts(ctx, changes, '/etc/group', names, 3);
  await dropAccounts(ctx, changes, '/etc/gshadow', names, 3);
  await dropAccounts(ctx, changes, '/etc/subuid', names, null);
  await dropAccounts(ctx, changes, '/etc/subgid', names, null);
}

const OPERATIONS: Operation[] = [
  { name: 'abrt-data', isDefault: true, description: 'crash data written by ABRT', run: globs('abrt-data', ['/var/spool/abrt/*', '/var/tmp/abrt/*', '/var/log/abrt-oops/*']) },
  { name: 'backup-files', isDefault: true, description: 'editor and tool backup files (*.bak, *~) in /etc, /root, /srv, /tmp, /var',
    run: async (ctx, changes) => {
      for (const dir of ['/etc', '/root', '/srv', '/tmp', '/var']) {
        if (!(await ctx.g.isDir(dir))) continue;
        for (const rel of await ctx.g.find(dir)) {
          const base = rel.slice(rel.lastIndexOf('/') + 1);
          if (!/\.bak$|~$/.test(base)) continue;
          const p = `${dir}/${rel.replace(/^\//, '')}`;
          if (await ctx.g.isFile(p)) await removePath(ctx, changes, 'backup-files', p);
        }
      }
    } },
  { name: 'bash-history', isDefault: true, description: "users' shell history",
    run: async (ctx, changes) => {
      for (const h of await homeDirs(ctx.g)) {
        for (const f of ['.bash_history', '.zsh_history', '.history', '.sh_history', '.lesshst', '.python_history', '.mysql_history', '.psql_history', '.viminfo']) {
          await removePath(ctx, changes, 'bash-history', `${h}/${f}`);
        }
      }
    } },
  { name: 'blkid-tab', isDefault: true, description: "blkid's device cache",
    run: globs('blkid-tab', ['/var/run/blkid.tab*', '/run/blkid/blkid.tab*', '/etc/blkid/blkid.tab*', '/etc/blkid.tab*', '/dev/.blkid.tab*']) },
  { name: 'ca-certificates', isDefault: false, description: 'locally added CA certificates (anchors)',
    run: globs('ca-certificates', ['/etc/pki/ca-trust/source/anchors/*', '/usr/local/share/ca-certificates/*', '/etc/pki/trust/anchors/*']) },
  { name: 'crash-data', isDefault: true, description: 'kernel crash dumps', run: globs('crash-data', ['/var/crash/*', '/var/log/dump/*']) },
  { name: 'cron-spool', isDefault: true, description: "users' cron and at jobs (spool files; directories kept)",
    run: globs('cron-spool', ['/var/spool/cron/*', '/var/spool/atjobs/*', '/var/spool/atjobs/.SEQ', '/var/spool/atspool/*', '/var/spool/at/*', '/var/spool/at/.SEQ'], 'files') },
  { name: 'dhcp-client-state', isDefault: true, description: 'DHCP client leases',
    run: globs('dhcp-client-state', ['/var/lib/dhclient/*', '/var/lib/dhcp/dhclient*', '/var/lib/dhcpcd/*', '/var/lib/NetworkManager/*.lease', '/var/lib/NetworkManager/dhclient-*', '/var/lib/systemd/network/*.lease', '/var/lib/wicked/lease*'], 'files') },
  { name: 'dhcp-server-state', isDefault: true, description: 'DHCP server leases',
    run: globs('dhcp-server-state', ['/var/lib/dhcpd/*', '/var/lib/dhcp/dhcpd.leases*', '/var/lib/dhcp/dhcpd6.leases*'], 'files') },
  { name: 'dovecot-data', isDefault: true, description: 'Dovecot data', run: globs('dovecot-data', ['/var/lib/dovecot/*']) },
  { name: 'firewall-rules', isDefault: false, description: 'firewall rules',
    run: globs('firewall-rules', ['/etc/sysconfig/iptables', '/etc/firewalld/services/*', '/etc/firewalld/zones/*', '/etc/iptables/rules.v4', '/etc/iptables/rules.v6']) },
  { name: 'flag-reconfiguration', isDefault: false, description: 'flags the system for reconfiguration at next boot (/.unconfigured)',
    run: async (ctx, changes) => {
      if (await ctx.g.exists('/.unconfigured')) return;
      await ctx.g.touch('/.unconfigured');
      note(ctx, changes, { op: 'flag-reconfiguration', action: 'created', path: '/.unconfigured' });
    } },
  { name: 'fs-uuids', isDefault: false, description: 'new random filesystem UUIDs, with the old ones replaced in fstab, crypttab and boot configuration', run: fsUuids },
  { name: 'ipa-client', isDefault: true, description: 'IPA client files',
    run: globs('ipa-client', ['/etc/ipa/ca.crt', '/etc/ipa/default.conf', '/var/lib/ipa-client/sysrestore/*', '/var/lib/ipa-client/pki/*']) },
  { name: 'kerberos-data', isDefault: false, description: 'Kerberos KDC data (kadm5.acl and kdc.conf kept)',
    run: async (ctx, changes) => {
      for (const p of await glob(ctx.g, '/var/kerberos/krb5kdc/*')) {
        if (/\/(kadm5\.acl|kdc\.conf)$/.test(p)) continue;
        await removePath(ctx, changes, 'kerberos-data', p);
      }
      await removePath(ctx, changes, 'kerberos-data', '/etc/krb5.keytab');
    } },
  { name: 'kerberos-hostkeytab', isDefault: true, description: 'Kerberos host keytabs', run: globs('kerberos-hostkeytab', ['/etc/krb5.keytab', '/etc/krb5.keytab.*']) },
  { name: 'logfiles', isDefault: true, description: 'log files', run: globs('logfiles', LOGFILES) },
  { name: 'lvm-system-devices', isDefault: true, description: "LVM's system devices file", run: globs('lvm-system-devices', ['/etc/lvm/devices/system.devices']) },
  { name: 'lvm-uuids', isDefault: true, description: 'new random UUIDs for LVM physical volumes and volume groups', run: lvmUuidsOp },
  { name: 'machine-id', isDefault: true, description: 'the machine id (emptied, so the next boot makes a new one)',
    run: async (ctx, changes) => {
      await truncateFile(ctx, changes, 'machine-id', '/etc/machine-id');
      await removePath(ctx, changes, 'machine-id', '/var/lib/dbus/machine-id');
    } },
  { name: 'mail-spool', isDefault: true, description: 'local mail', run: globs('mail-spool', ['/var/spool/mail/*', '/var/mail/*'], 'files') },
  { name: 'net-hostname', isDefault: true, description: 'HOSTNAME and DHCP_HOSTNAME in ifcfg files',
    run: async (ctx, changes) => {
      for (const pat of ['/etc/sysconfig/network-scripts/ifcfg-*', '/etc/sysconfig/network/ifcfg-*']) {
        await dropLines(ctx, changes, 'net-hostname', pat, /^\s*(DHCP_)?HOSTNAME=/);
      }
    } },
  { name: 'net-hwaddr', isDefault: true, description: 'HWADDR in ifcfg files and MAC bindings in NetworkManager connections',
    run: async (ctx, changes) => {
      for (const pat of ['/etc/sysconfig/network-scripts/ifcfg-*', '/etc/sysconfig/network/ifcfg-*']) {
        await dropLines(ctx, changes, 'net-hwaddr', pat, /^\s*HWADDR=/);
      }
      await dropLines(ctx, changes, 'net-hwaddr', '/etc/NetworkManager/system-connections/*', /^\s*mac-address=/);
    } },
  { name: 'net-nmconn', isDefault: true, description: 'NetworkManager connection profiles', run: globs('net-nmconn', ['/etc/NetworkManager/system-connections/*']) },
  { name: 'pacct-log', isDefault: true, description: 'process accounting logs (emptied)',
    run: async (ctx, changes) => {
      for (const pat of ['/var/account/pacct*', '/var/log/account/pacct*']) {
        for (const p of await glob(ctx.g, pat)) {
          if (/\/pacct$/.test(p)) await truncateFile(ctx, changes, 'pacct-log', p);
          else await removePath(ctx, changes, 'pacct-log', p);
        }
      }
    } },
  { name: 'package-manager-cache', isDefault: true, description: 'downloaded packages and package-manager caches',
    run: globs('package-manager-cache', [
      '/var/cache/apt/archives/*.deb', '/var/cache/apt/archives/partial/*', '/var/cache/apt/*.bin',
      '/var/cache/dnf/*', '/var/cache/yum/*', '/var/cache/zypp/*', '/var/cache/urpmi/*', '/var/cache/pacman/pkg/*', '/var/cache/apk/*',
    ]) },
  { name: 'pam-data', isDefault: true, description: 'PAM runtime data', run: globs('pam-data', ['/var/run/console/*', '/var/run/faillock/*', '/var/run/sepermit/*', '/run/faillock/*']) },
  { name: 'passwd-backups', isDefault: true, description: 'backups of the account files',
    run: globs('passwd-backups', ['/etc/group-', '/etc/gshadow-', '/etc/passwd-', '/etc/shadow-', '/etc/subuid-', '/etc/subgid-']) },
  { name: 'puppet-data-log', isDefault: true, description: 'Puppet data and logs', run: globs('puppet-data-log', ['/var/lib/puppet/*/*', '/var/log/puppet/*']) },
  { name: 'rh-subscription-manager', isDefault: true, description: 'RHSM consumer and entitlement certificates',
    run: globs('rh-subscription-manager', ['/etc/pki/consumer/*', '/etc/pki/entitlement/*']) },
  { name: 'rhn-systemid', isDefault: true, description: 'RHN system id', run: globs('rhn-systemid', ['/etc/sysconfig/rhn/systemid', '/etc/sysconfig/rhn/osad-auth.conf']) },
  { name: 'rpm-db', isDefault: true, description: "RPM's host-specific database files", run: globs('rpm-db', ['/var/lib/rpm/__db.*']) },
  { name: 'samba-db-log', isDefault: true, description: 'Samba logs and databases',
    run: globs('samba-db-log', ['/var/log/samba/old/*', '/var/log/samba/*', '/var/lib/samba/*/*', '/var/lib/samba/*.tdb'], 'files') },
  { name: 'smolt-uuid', isDefault: true, description: 'Smolt hardware UUID', run: globs('smolt-uuid', ['/etc/sysconfig/hw-uuid', '/etc/smolt/uuid', '/etc/smolt/hw-uuid']) },
  { name: 'ssh-hostkeys', isDefault: true, description: 'SSH host keys (regenerated on next boot by most distributions)', run: globs('ssh-hostkeys', ['/etc/ssh/*_host_*']) },
  { name: 'ssh-userdir', isDefault: true, description: "users' ~/.ssh directories",
    run: async (ctx, changes) => {
      for (const h of await homeDirs(ctx.g)) await removePath(ctx, changes, 'ssh-userdir', `${h}/.ssh`);
    } },
  { name: 'sssd-db-log', isDefault: true, description: 'SSSD databases and logs', run: globs('sssd-db-log', ['/var/log/sssd/*', '/var/lib/sss/db/*']) },
  { name: 'tmp-files', isDefault: true, description: 'temporary files in /tmp and /var/tmp',
    run: async (ctx, changes) => {
      await emptyDir(ctx, changes, 'tmp-files', '/tmp');
      await emptyDir(ctx, changes, 'tmp-files', '/var/tmp');
    } },
  { name: 'udev-persistent-net', isDefault: true, description: 'udev persistent network interface names',
    run: globs('udev-persistent-net', ['/etc/udev/rules.d/70-persistent-net.rules']) },
  { name: 'user-account', isDefault: false, description: 'login user accounts, their homes and mail (root and system users kept)', run: userAccount },
  { name: 'utmp', isDefault: true, description: 'the utmp login record', run: globs('utmp', ['/var/run/utmp', '/run/utmp']) },
  { name: 'yum-uuid', isDefault: true, description: "yum's UUID", run: globs('yum-uuid', ['/var/lib/yum/uuid']) },
  // Last, so that no removal undoes what it does.
  { name: 'customize', isDefault: true, description: 'the customizations given as options.customize (guestsh/customize functions); nothing without them',
    run: async (ctx, changes, opts) => {
      if (opts.customize) changes.push(...(await opts.customize(ctx)));
    } },
];

/** virt-sysprep operations guestsh does not build, and why. */
const NOT_BUILT: Record<string, string> = {
  script:
    "'script' runs host programs in a FUSE mount of the guest; guestsh never mounts guests on the host. Write a recipe instead (guestfs calls, or customize.runCommand to run inside the guest)",
};

/** Earlier guestsh names of operations. */
const ALIASES: Record<string, string> = { 'kerberos-hostkeys': 'kerberos-hostkeytab' };

/**
 * lvm-uuids: LVM refuses new UUIDs while a volume group has active logical
 * volumes (and the appliance activates them all), so the guest is unmounted
 * and its volume groups deactivated around the change, then both restored.
 */
async function lvmUuidsOp(ctx: Ctx, changes: Change[]): Promise<void> {
  const { g } = ctx;
  const pvs = await g.pvs();
  if (pvs.length === 0) return;
  const vgs = await g.vgs();
  const uuids = async (): Promise<string[]> => [...(await Promise.all(pvs.map((p) => g.pvuuid(p)))), ...(await Promise.all(vgs.map((v) => g.vguuid(v))))];
  const before = await uuids();
  const mounted = Object.entries(await g.mountpoints()).sort((a, b) => a[1].length - b[1].length);
  await g.umountAll();
  try {
    if (vgs.length) await g.vgActivate(false, vgs);
    await g.pvchangeUuidAll();
    if (vgs.length) await g.vgchangeUuidAll();
  } finally {
    if (vgs.length) await g.vgActivate(true, vgs);
    for (const [dev, mp] of mounted) await g.mount(dev, mp);
  }
  const after = await uuids();
  [...pvs, ...vgs].forEach((name, i) => {
    if (before[i] !== after[i]) note(ctx, changes, { op: 'lvm-uuids', action: 'changed-uuid', path: name, detail: `${before[i]} → ${after[i]}` });
  });
}

/** Files that name filesystems by UUID and that fs-uuids keeps in step. */
const UUID_REFERENCES = [
  '/etc/fstab', '/etc/crypttab', '/etc/default/grub', '/etc/kernel/cmdline', '/etc/initramfs-tools/conf.d/resume',
  '/boot/grub/grub.cfg', '/boot/grub2/grub.cfg', '/boot/efi/EFI/*/grub.cfg', '/boot/loader/entries/*.conf', '/etc/default/grub.d/*.cfg',
];

/**
 * fs-uuids: a filesystem's UUID can only change while it is unmounted, so
 * the guest is unmounted, every filesystem that supports it gets a random
 * UUID, the guest is mounted again at the same mountpoints, and the old
 * UUIDs are replaced in the files that name them (UUID_REFERENCES). Not
 * rewritten: UUIDs inside initramfs images (regenerate them in the guest).
 */
async function fsUuids(ctx: Ctx, changes: Change[]): Promise<void> {
  const { g } = ctx;
  const mounted = Object.entries(await g.mountpoints()).sort((a, b) => a[1].length - b[1].length);
  const renamed = new Map<string, string>();
  await g.umountAll();
  try {
    for (const [dev, type] of Object.entries(await g.listFilesystems())) {
      if (type === 'unknown' || type === '') continue;
      const before = await g.vfsUuid(dev).catch(() => '');
      if (!before) continue;
      try {
        // tune2fs changes the UUID only of a freshly checked ext filesystem (this one has just been unmounted).
        if (/^ext[234]$/.test(type)) await g.e2fsck(dev, { correct: true });
        await g.setUuidRandom(dev);
      } catch (e) {
        ctx.log?.(`fs-uuids: ${dev} (${type}) kept its UUID: ${e instanceof Error ? e.message : String(e)}`);
        continue;
      }
      const after = await g.vfsUuid(dev);
      if (after === before) continue;
      renamed.set(before.toLowerCase(), after);
      note(ctx, changes, { op: 'fs-uuids', action: 'changed-uuid', path: dev, detail: `${before} → ${after}` });
    }
  } finally {
    for (const [dev, mp] of mounted) await g.mount(dev, mp);
  }
  if (renamed.size === 0) return;
  const re = new RegExp([...renamed.keys()].join('|'), 'gi');
  for (const pattern of UUID_REFERENCES) {
    for (const f of await glob(g, pattern)) {
      const text = await readText(g, f);
      if (text === null) continue;
      const updated = text.replace(re, (m) => renamed.get(m.toLowerCase()) ?? m);
      if (updated === text) continue;
      await writeText(g, f, updated);
      note(ctx, changes, { op: 'fs-uuids', action: 'modified', path: f, detail: 'UUIDs updated' });
    }
  }
}

const byName = new Map(OPERATIONS.map((o) => [o.name, o]));

/** Every operation: name, whether it is in the default set, and what it removes. */
export function listOperations(): { name: string; isDefault: boolean; description: string }[] {
  return OPERATIONS.map(({ name, isDefault, description }) => ({ name, isDefault, description }));
}

/** virt-sysprep operations not built in guestsh: name → why, and what to do instead. */
export function notBuilt(): Record<string, string> {
  return { ...NOT_BUILT };
}

const canonical = (n: string): string => ALIASES[n] ?? n;

export const defaultOperations: readonly string[] = OPERATIONS.filter((o) => o.isDefault).map((o) => o.name);

/** Resolves the operation set from the options (unknown names are an error). */
export function selectOperations(opts: SysprepOptions = {}): string[] {
  const check = (names: string[]): string[] => {
    return names.map((raw) => {
      const n = canonical(raw);
      if (NOT_BUILT[n]) throw new Error(`sysprep: operation '${n}' is not built in guestsh: ${NOT_BUILT[n]}`);
      if (!byName.has(n)) throw new Error(`sysprep: unknown operation '${raw}' (see listOperations())`);
      return n;
    });
  };
  const set = new Set(opts.operations ? check(opts.operations) : defaultOperations);
  for (const n of check(opts.enable ?? [])) set.add(n);
  for (const n of check(opts.disable ?? [])) set.delete(n);
  return OPERATIONS.filter((o) => set.has(o.name)).map((o) => o.name);
}

/** Runs one operation by name. */
export async function runOperation(ctx: Ctx, name: string, opts: SysprepOptions = {}): Promise<Change[]> {
  const n = canonical(name);
  if (NOT_BUILT[n]) throw new Error(`sysprep: operation '${n}' is not built in guestsh: ${NOT_BUILT[n]}`);
  const op = byName.get(n);
  if (!op) throw new Error(`sysprep: unknown operation '${name}'`);
  const changes: Change[] = [];
  await op.run(ctx, changes, opts);
  return changes;
}

/** Runs the selected operations (virt-sysprep's default set unless told otherwise) on the mounted guest. */
export async function sysprep(ctx: Ctx, opts: SysprepOptions = {}): Promise<Change[]> {
  const changes: Change[] = [];
  for (const name of selectOperations(opts)) {
    ctx.log?.(`sysprep: ${name}`);
    await byName.get(name)!.run(ctx, changes, opts);
  }
  return changes;
}

// One function per operation, for recipes that want a single step.
const op = (name: string) => (ctx: Ctx, opts: SysprepOptions = {}) => runOperation(ctx, name, opts);
export const abrtData = op('abrt-data');
export const backupFiles = op('backup-files');
export const bashHistory = op('bash-history');
export const blkidTab = op('blkid-tab');
export const caCertificates = op('ca-certificates');
export const crashData = op('crash-data');
export const cronSpool = op('cron-spool');
export const dhcpClientState = op('dhcp-client-state');
export const dhcpServerState = op('dhcp-server-state');
export const dovecotData = op('dovecot-data');
export const firewallRules = op('firewall-rules');
export const ipaClient = op('ipa-client');
export const kerberosData = op('kerberos-data');
export const kerberosHostkeytab = op('kerberos-hostkeytab');
/** The earlier name of kerberosHostkeytab. */
export const kerberosHostkeys = kerberosHostkeytab;
export const customize = (ctx: Ctx, fn: (ctx: Ctx) => Promise<Change[]>): Promise<Change[]> => runOperation(ctx, 'customize', { customize: fn });
export const flagReconfiguration = op('flag-reconfiguration');
export const fsUuids_ = op('fs-uuids');
export { fsUuids_ as fsUuids };
export const logfiles = op('logfiles');
export const lvmSystemDevices = op('lvm-system-devices');
export const lvmUuids = op('lvm-uuids');
export const machineId = op('machine-id');
export const mailSpool = op('mail-spool');
export const netHostname = op('net-hostname');
export const netHwaddr = op('net-hwaddr');
export const netNmconn = op('net-nmconn');
export const pacctLog = op('pacct-log');
export const packageManagerCache = op('package-manager-cache');
export const pamData = op('pam-data');
export const passwdBackups = op('passwd-backups');
export const puppetDataLog = op('puppet-data-log');
export const rhSubscriptionManager = op('rh-subscription-manager');
export const rhnSystemid = op('rhn-systemid');
export const rpmDb = op('rpm-db');
export const sambaDbLog = op('samba-db-log');
export const smoltUuid = op('smolt-uuid');
export const sshHostkeys = op('ssh-hostkeys');
export const sshUserdir = op('ssh-userdir');
export const sssdDbLog = op('sssd-db-log');
export const tmpFiles = op('tmp-files');
export const udevPersistentNet = op('udev-persistent-net');
export const userAccount_ = op('user-account');
export { userAccount_ as userAccount };
export const utmp = op('utmp');
export const yumUuid = op('yum-uuid');

/** The sysprep recipe's params: its own, and every customize param (virt-sysprep's customize options). */
export const params: RecipeParamSpecs = {
  operations: { description: 'the operations to run instead of the default set (comma-separated)', type: 'list' },
  enable: { description: 'operations to run besides the default set', type: 'list' },
  disable: { description: 'operations of the default set to skip', type: 'list' },
  'keep-user-accounts': { description: 'user accounts the user-account operation keeps', type: 'list' },
  'remove-user-accounts': { description: 'the only user accounts the user-account operation removes', type: 'list' },
  ...customizeParams,
};
const SYSPREP_PARAMS = ['operations', 'enable', 'disable', 'keep-user-accounts', 'remove-user-accounts'];

/**
 * As a ready recipe (`guestsh run -a IMG guestsh/sysprep`): params
 * operations=a,b | enable=a,b | disable=a,b | keep-user-accounts=u,v | remove-user-accounts=u,v,
 * and any guestsh/customize param (hostname=, root-password=, install=, …),
 * applied by the customize operation, as virt-sysprep's customize options are.
 */
export default async function recipe(ctx: RecipeCtx): Promise<Change[]> {
  await ensureMounted(ctx);
  const custom: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.params)) {
    if (SYSPREP_PARAMS.includes(k)) continue;
    if (!CUSTOMIZE_PARAMS.includes(k)) throw new Error(`guestsh/sysprep: unknown param '${k}' (sysprep's: ${SYSPREP_PARAMS.join(', ')}; customize's: ${CUSTOMIZE_PARAMS.join(', ')})`);
    custom[k] = v;
  }
  const changes = await sysprep(ctx, {
    operations: listParam(ctx.params['operations']),
    enable: listParam(ctx.params['enable']),
    disable: listParam(ctx.params['disable']),
    keepUserAccounts: listParam(ctx.params['keep-user-accounts']),
    removeUserAccounts: listParam(ctx.params['remove-user-accounts']),
    customize: Object.keys(custom).length ? (c) => customizeFromParams(c, custom) : undefined,
  });
  ctx.log?.(`sysprep: ${changes.length} change(s)`);
  return changes;
}
