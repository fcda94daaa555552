// Every standard-library operation on a per-test copy of the Debian guest,
// run inside the recipe sandbox, with the guest's files checked before and after.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { PathPolicy } from '../src/runtime/recipe/policy.js';
import { runInSandbox } from '../src/runtime/recipe/sandbox.js';
import type { Change } from '../src/stdlib/util.js';
import { defaultOperations, listOperations, notBuilt, selectOperations } from '../src/stdlib/sysprep.js';
import { parsePasswordSelector } from '../src/stdlib/customize.js';
import { findAptSource } from '../testdata/apt-mirror.js';
import { ensureImage } from '../testdata/index.js';
import { isolatedTmpdir } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => tmp.restore());
const recipes = resolve(__dirname, 'recipes');
let base = '';
beforeAll(async () => {
  base = await ensureImage('debian');
}, scaled(600_000));

type G = Session['g'];
let n = 0;

interface Extra {
  /** The run's output directory (recipes may read files there too). */
  out: string;
  /** Runs a recipe file beside this test's recipes with params. */
  recipe: (file: string, params: Record<string, string>) => Promise<unknown>;
}

/** A fresh copy of the guest, mounted, for one test. */
async function withGuest(
  f: (g: G, call: (module: string, fn: string, ...args: unknown[]) => Promise<unknown>, s: Session, extra: Extra) => Promise<void>,
  opts: { network?: boolean; timeoutMs?: number; image?: 'lvm' } = {},
): Promise<void> {
  const img = join(tmp.dir, `g${n++}.img`);
  execFileSync('cp', ['--sparse=always', opts.image ? await ensureImage(opts.image) : base, img]);
  const s = new Session();
  if (opts.network) s.settings.network = true;
  const out = mkdtempSync(join(tmp.dir, 'out-'));
  try {
    await s.addDrive(img, { format: 'raw' });
    await s.launch();
    if (opts.image) {
      // Mounted as the guest boots (by inspection).
      const [root] = await s.g.inspectOs();
      const mps = Object.entries(await s.g.inspectGetMountpoints(root!)).sort((a, b) => a[0].length - b[0].length);
      for (const [mp, dev] of mps) await s.g.mount(dev, mp);
    } else {
      await s.g.mount('/dev/sda2', '/');
      await s.g.mount('/dev/sda1', '/boot');
    }
    const policy = await PathPolicy.create(recipes, out);
    const recipe = async (file: string, params: Record<string, string>): Promise<unknown> => {
      const r = await runInSandbox({
        entry: join(recipes, file),
        params,
        target: s,
        policy,
        memoryMb: 128,
        timeoutMs: opts.timeoutMs ?? 120_000,
        log: () => {},
      });
      if (!r.ok) throw new Error(`${file} ${JSON.stringify(params)}: ${r.failure!.message}\n${r.failure!.stack}`);
      return r.value;
    };
    const call = async (module: string, fn: string, ...args: unknown[]): Promise<unknown> => {
      const extra: Record<string, string> = fn === 'edit' ? { from: args[1] as string, to: args[2] as string } : {};
      return recipe('stdlib-call.gfs.ts', { module, fn, args: JSON.stringify(fn === 'edit' ? [args[0]] : args), ...extra });
    };
    await f(s.g, call, s, { out, recipe });
  } finally {
    await s.close();
    execFileSync('rm', ['-f', img]);
  }
}

async function seed(g: G, files: Record<string, string>): Promise<void> {
  for (const [p, text] of Object.entries(files)) {
    await g.mkdirP(p.slice(0, p.lastIndexOf('/')) || '/');
    await g.write(p, text);
  }
}

async function present(g: G, paths: string[]): Promise<Record<string, boolean>> {
  const out: Record<string, boolean> = {};
  for (const p of paths) out[p] = (await g.exists(p)) || (await g.isSymlink(p));
  return out;
}
const all = (paths: string[], v: boolean): Record<string, boolean> => Object.fromEntries(paths.map((p) => [p, v]));

describe('sysprep operations', () => {
  // Files each operation must remove (seeded first), and files it must keep.
  const table: Record<string, { remove: string[]; keep?: string[] }> = {
    'abrt-data': { remove: ['/var/spool/abrt/ccpp-1/coredump', '/var/tmp/abrt/last-ccpp'] },
    'backup-files': { remove: ['/etc/hosts.bak', '/root/notes~', '/var/lib/x/conf.bak'], keep: ['/etc/hosts', '/home/demo/keep.bak'] },
    'bash-history': { remove: ['/root/.bash_history', '/home/demo/.bash_history'], keep: ['/home/demo/.bashrc'] },
    'blkid-tab': { remove: ['/etc/blkid/blkid.tab', '/etc/blkid/blkid.tab.old'] },
    'ca-certificates': { remove: ['/usr/local/share/ca-certificates/corp.crt'] },
    'crash-data': { remove: ['/var/crash/linux-image.crash', '/var/log/dump/vmcore'] },
    'cron-spool': { remove: ['/var/spool/cron/crontabs/demo', '/var/spool/at/a0001'], keep: ['/var/spool/cron/crontabs', '/etc/crontab'] },
    'dhcp-client-state': { remove: ['/var/lib/dhcp/dhclient.eth0.leases', '/var/lib/dhclient/dhclient.leases'] },
    'dhcp-server-state': { remove: ['/var/lib/dhcpd/dhcpd.leases', '/var/lib/dhcp/dhcpd.leases'] },
    'dovecot-data': { remove: ['/var/lib/dovecot/instances'] },
    'firewall-rules': { remove: ['/etc/iptables/rules.v4', '/etc/sysconfig/iptables'] },
    'ipa-client': { remove: ['/etc/ipa/ca.crt', '/etc/ipa/default.conf'] },
    'kerberos-data': { remove: ['/var/kerberos/krb5kdc/principal', '/etc/krb5.keytab'], keep: ['/var/kerberos/krb5kdc/kdc.conf', '/var/kerberos/krb5kdc/kadm5.acl'] },
    'kerberos-hostkeytab': { remove: ['/etc/krb5.keytab', '/etc/krb5.keytab.old'] },
    logfiles: { remove: ['/var/log/syslog', '/var/log/auth.log.1', '/var/log/apt/history.log', '/var/log/dpkg.log', '/var/log/journal/abc/system.journal', '/var/log/wtmp'], keep: ['/var/log', '/var/log/apt'] },
    'lvm-system-devices': { remove: ['/etc/lvm/devices/system.devices'] },
    'mail-spool': { remove: ['/var/mail/demo', '/var/mail/root'] },
    'net-nmconn': { remove: ['/etc/NetworkManager/system-connections/Wired.nmconnection'] },
    'package-manager-cache': { remove: ['/var/cache/apt/archives/foo_1.0_amd64.deb', '/var/cache/apt/pkgcache.bin', '/var/cache/dnf/repo.solv'], keep: ['/var/cache/apt/archives'] },
    'pam-data': { remove: ['/var/run/faillock/demo'] },
    'passwd-backups': { remove: ['/etc/passwd-', '/etc/shadow-', '/etc/group-', '/etc/gshadow-'], keep: ['/etc/passwd', '/etc/shadow'] },
    'puppet-data-log': { remove: ['/var/lib/puppet/state/last_run.yaml', '/var/log/puppet/puppet.log'] },
    'rh-subscription-manager': { remove: ['/etc/pki/consumer/cert.pem', '/etc/pki/entitlement/1.pem'] },
    'rhn-systemid': { remove: ['/etc/sysconfig/rhn/systemid'] },
    'rpm-db': { remove: ['/var/lib/rpm/__db.001', '/var/lib/rpm/__db.002'], keep: ['/var/lib/rpm/Packages'] },
    'samba-db-log': { remove: ['/var/log/samba/log.smbd', '/var/lib/samba/private/secrets.tdb'] },
    'smolt-uuid': { remove: ['/etc/smolt/uuid', '/etc/sysconfig/hw-uuid'] },
    'ssh-hostkeys': { remove: ['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub', '/etc/ssh/ssh_host_ed25519_key'], keep: ['/etc/ssh/sshd_config'] },
    'ssh-userdir': { remove: ['/root/.ssh', '/home/demo/.ssh'], keep: ['/home/demo'] },
    'sssd-db-log': { remove: ['/var/log/sssd/sssd.log', '/var/lib/sss/db/cache.ldb'] },
    'tmp-files': { remove: ['/tmp/a', '/tmp/.hidden', '/tmp/dir/x', '/var/tmp/y'], keep: ['/tmp', '/var/tmp'] },
    'udev-persistent-net': { remove: ['/etc/udev/rules.d/70-persistent-net.rules'], keep: ['/etc/udev/rules.d'] },
    utmp: { remove: ['/run/utmp'] },
    'yum-uuid': { remove: ['/var/lib/yum/uuid'] },
  };
  const filesOf = (paths: string[]): Record<string, string> => Object.fromEntries(paths.map((p) => [p.endsWith('.ssh') ? `${p}/authorized_keys` : p, `seeded ${p}\n`]));

  for (const [op, t] of Object.entries(table)) {
    it(op, async () => {
      await withGuest(async (g, call) => {
        // Keep-paths that are not parents of removed ones are seeded as files.
        const keepFiles = (t.keep ?? []).filter((k) => !t.remove.some((r) => r.startsWith(`${k}/`)) && !['/tmp', '/var/tmp', '/var/log', '/home/demo'].includes(k));
        await seed(g, filesOf([...t.remove, ...keepFiles]));
        const watched = [...t.remove, ...(t.keep ?? [])];
        expect(await present(g, watched)).toEqual(all(watched, true));
        const changes = (await call('sysprep', 'runOperation', op)) as Change[];
        expect(await present(g, t.remove)).toEqual(all(t.remove, false));
        expect(await present(g, t.keep ?? [])).toEqual(all(t.keep ?? [], true));
        expect(changes.length).toBeGreaterThan(0);
        expect(changes.every((c) => c.op === op)).toBe(true);
      });
    });
  }

  it('machine-id (emptied, dbus copy removed)', async () => {
    await withGuest(async (g, call) => {
      await seed(g, { '/etc/machine-id': '0123456789abcdef0123456789abcdef\n', '/var/lib/dbus/machine-id': '0123456789abcdef0123456789abcdef\n' });
      await call('sysprep', 'machineId');
      expect(await g.exists('/etc/machine-id')).toBe(true);
      expect((await g.statns('/etc/machine-id')).st_size).toBe(0n);
      expect(await g.exists('/var/lib/dbus/machine-id')).toBe(false);
    });
  });

  it('net-hwaddr and net-hostname (ifcfg lines)', async () => {
    await withGuest(async (g, call) => {
      const f = '/etc/sysconfig/network-scripts/ifcfg-eth0';
      await seed(g, { [f]: 'DEVICE=eth0\nHWADDR=52:54:00:12:34:56\nHOSTNAME=old\nDHCP_HOSTNAME=old\nONBOOT=yes\n' });
      await call('sysprep', 'netHwaddr');
      expect(await g.cat(f)).toBe('DEVICE=eth0\nHOSTNAME=old\nDHCP_HOSTNAME=old\nONBOOT=yes\n');
      await call('sysprep', 'netHostname');
      expect(await g.cat(f)).toBe('DEVICE=eth0\nONBOOT=yes\n');
    });
  });

  it('pacct-log (current log emptied, rotated ones removed)', async () => {
    await withGuest(async (g, call) => {
      await seed(g, { '/var/log/account/pacct': 'x', '/var/log/account/pacct.1': 'y' });
      await call('sysprep', 'pacctLog');
      expect((await g.statns('/var/log/account/pacct')).st_size).toBe(0n);
      expect(await g.exists('/var/log/account/pacct.1')).toBe(false);
    });
  });

  it('user-account (demo removed from every account file, home and mail; root kept)', async () => {
    await withGuest(async (g, call) => {
      await seed(g, { '/var/mail/demo': 'mail\n' });
      expect(await g.cat('/etc/passwd')).toMatch(/^demo:/m);
      expect(await g.cat('/etc/group')).toMatch(/^sudo:.*demo/m);
      await call('sysprep', 'userAccount');
      expect(await g.cat('/etc/passwd')).not.toMatch(/^demo:/m);
      expect(await g.cat('/etc/shadow')).not.toMatch(/^demo:/m);
      expect(await g.cat('/etc/group')).not.toMatch(/demo/);
      expect(await g.cat('/etc/passwd')).toMatch(/^root:/m);
      expect(await present(g, ['/home/demo', '/var/mail/demo'])).toEqual({ '/home/demo': false, '/var/mail/demo': false });
    });
  });

  it('user-account keeps listed users', async () => {
    await withGuest(async (g, call) => {
      const r = (await call('sysprep', 'userAccount', { keepUserAccounts: ['demo'] })) as Change[];
      expect(r).toEqual([]);
      expect(await g.cat('/etc/passwd')).toMatch(/^demo:/m);
    });
  });

  it('lvm-uuids (no LVM on this guest: nothing to do)', async () => {
    await withGuest(async (_g, call) => {
      expect(await call('sysprep', 'lvmUuids')).toEqual([]);
    });
  });

  it("the default set is virt-sysprep's and leaves accounts alone", async () => {
    // virt-sysprep 1.48's own non-default set.
    expect(listOperations().filter((o) => !o.isDefault).map((o) => o.name)).toEqual(['ca-certificates', 'firewall-rules', 'flag-reconfiguration', 'fs-uuids', 'kerberos-data', 'user-account']);
    await withGuest(async (g, call) => {
      await seed(g, {
        '/etc/machine-id': 'abc\n',
        '/etc/ssh/ssh_host_ed25519_key': 'k',
        '/root/.bash_history': 'ls\n',
        '/var/log/syslog': 'log\n',
        '/tmp/t': 't',
        '/usr/local/share/ca-certificates/corp.crt': 'cert',
      });
      const changes = (await call('sysprep', 'sysprep')) as Change[];
      const ops = new Set(changes.map((c) => c.op));
      for (const op of ['machine-id', 'ssh-hostkeys', 'bash-history', 'logfiles', 'tmp-files']) expect(ops.has(op)).toBe(true);
      expect([...ops].every((o) => defaultOperations.includes(o))).toBe(true);
      expect(await g.exists('/usr/local/share/ca-certificates/corp.crt')).toBe(true);
      expect(await g.cat('/etc/passwd')).toMatch(/^demo:/m);
      // Idempotent: a second run finds nothing more to do.
      expect(await call('sysprep', 'sysprep')).toEqual([]);
    });
  });
});

describe('customize operations', () => {
  it('hostname (/etc/hostname and /etc/hosts)', async () => {
    await withGuest(async (g, call) => {
      expect((await g.cat('/etc/hostname')).trim()).toBe('guestsh-demo');
      await seed(g, { '/etc/hosts': '127.0.0.1 localhost\n127.0.1.1 guestsh-demo\n' });
      await call('customize', 'hostname', 'web01.example.com');
      expect(await g.cat('/etc/hostname')).toBe('web01.example.com\n');
      expect(await g.cat('/etc/hosts')).toBe('127.0.0.1 localhost\n127.0.1.1 web01.example.com\n');
    });
  });

  it('timezone', async () => {
    await withGuest(async (g, call) => {
      if (!(await g.exists('/usr/share/zoneinfo/Europe/Paris'))) {
        await expect(call('customize', 'timezone', 'Europe/Paris')).rejects.toThrow(/has no \/usr\/share\/zoneinfo\/Europe\/Paris/);
        return;
      }
      await call('customize', 'timezone', 'Europe/Paris');
      expect(await g.readlink('/etc/localtime')).toBe('/usr/share/zoneinfo/Europe/Paris');
      if (await g.exists('/etc/timezone')) expect(await g.cat('/etc/timezone')).toBe('Europe/Paris\n');
    });
  });

  it("root-password and password: hashed by the guest's own chpasswd (its configured method)", async () => {
    await withGuest(async (g, call) => {
      const shadowField = async (u: string): Promise<string> => (await g.cat('/etc/shadow')).split('\n').find((l) => l.startsWith(`${u}:`))!.split(':')[1]!;
      const before = await shadowField('root');
      await call('customize', 'rootPassword', { password: 's3cret' });
      const after = await shadowField('root');
      expect(after).not.toBe(before);
      const pam = (await g.exists('/etc/pam.d/common-password')) ? await g.cat('/etc/pam.d/common-password') : '';
      expect(after).toMatch(/yescrypt/.test(pam) ? /^\$y\$/ : /^\$(6|y|5)\$/);
      await call('customize', 'password', 'demo', { hash: '$6$salt$abcdefghijklmnopqrstuv' });
      expect(await shadowField('demo')).toBe('$6$salt$abcdefghijklmnopqrstuv');
      await call('customize', 'password', 'demo', { locked: true });
      expect(await shadowField('demo')).toBe('!$6$salt$abcdefghijklmnopqrstuv');
      await call('customize', 'password', 'demo', { disabled: true });
      expect(await shadowField('demo')).toBe('*');
      await expect(call('customize', 'password', 'nosuchuser', { password: 'x' })).rejects.toThrow(/no user 'nosuchuser'/);
    });
  });

  it('ssh-inject (literal key and a key file beside the recipe; modes and owners)', async () => {
    await withGuest(async (g, call) => {
      expect(await g.exists('/home/demo/.ssh')).toBe(false);
      await call('customize', 'sshInject', 'demo', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILiteralKey000000000000000000000000000000 me@laptop');
      await call('customize', 'sshInject', 'demo', { file: 'key.pub' });
      // Repeating a key does not duplicate it.
      await call('customize', 'sshInject', 'demo', { file: 'key.pub' });
      const ak = await g.cat('/home/demo/.ssh/authorized_keys');
      expect(ak.split('\n').filter(Boolean)).toHaveLength(2);
      expect(ak).toContain('file@host');
      const st = await g.statns('/home/demo/.ssh/authorized_keys');
      expect([st.st_mode & 0o777n, st.st_uid, st.st_gid]).toEqual([0o600n, 1000n, 1000n]);
      const d = await g.statns('/home/demo/.ssh');
      expect([d.st_mode & 0o777n, d.st_uid]).toEqual([0o700n, 1000n]);
    });
  });

  it('write, append-line, edit, upload, copy-in, mkdir, chmod, chown, link, delete, truncate, touch, copy, move', async () => {
    await withGuest(async (g, call) => {
      await call('customize', 'write', '/etc/motd', 'hello\n');
      expect(await g.cat('/etc/motd')).toBe('hello\n');
      await seed(g, { '/etc/nonl': 'a' , '/etc/crlf': 'a\r\n' });
      await call('customize', 'appendLine', '/etc/nonl', 'b');
      await call('customize', 'appendLine', '/etc/crlf', 'b');
      await call('customize', 'appendLine', '/etc/newfile', 'first');
      expect([await g.cat('/etc/nonl'), await g.cat('/etc/crlf'), await g.cat('/etc/newfile')]).toEqual(['a\nb\n', 'a\r\nb\r\n', 'first\n']);
      await call('customize', 'edit', '/etc/motd', 'hello', 'goodbye');
      expect(await g.cat('/etc/motd')).toBe('goodbye\n');
      await call('customize', 'upload', 'data.txt', '/srv/data.txt');
      expect(await g.cat('/srv/data.txt')).toBe('hello from beside the recipe\n');
      await call('customize', 'copyIn', 'tree', '/srv');
      expect(await g.cat('/srv/tree/sub/two.txt')).toBe('two\n');
      await call('customize', 'mkdir', '/srv/a/b/c');
      expect(await g.isDir('/srv/a/b/c')).toBe(true);
      await call('customize', 'chmod', 0o640, '/srv/data.txt');
      expect((await g.statns('/srv/data.txt')).st_mode & 0o7777n).toBe(0o640n);
      await call('customize', 'chown', 'demo', 'demo', '/srv/data.txt');
      expect((await g.statns('/srv/data.txt')).st_uid).toBe(1000n);
      await call('customize', 'link', '/srv/data.txt', '/srv/l1', '/srv/l2');
      expect([await g.readlink('/srv/l1'), await g.readlink('/srv/l2')]).toEqual(['/srv/data.txt', '/srv/data.txt']);
      await call('customize', 'remove', '/srv/tree');
      expect(await g.exists('/srv/tree')).toBe(false);
      await call('customize', 'truncate', '/etc/motd');
      expect((await g.statns('/etc/motd')).st_size).toBe(0n);
      await call('customize', 'touch', '/srv/touched');
      expect(await g.isFile('/srv/touched')).toBe(true);
      await call('customize', 'copy', '/srv/data.txt', '/srv/copy.txt');
      await call('customize', 'move', '/srv/copy.txt', '/srv/moved.txt');
      expect(await present(g, ['/srv/copy.txt', '/srv/moved.txt'])).toEqual({ '/srv/copy.txt': false, '/srv/moved.txt': true });
    });
  });

  it('run-command and run (a script beside the recipe) execute inside the guest', async () => {
    await withGuest(async (g, call) => {
      const out = (await call('customize', 'runCommand', 'grep -c . /etc/debian_version && touch /ran-command')) as string;
      expect(out.trim()).toBe('1');
      expect(await g.exists('/ran-command')).toBe(true);
      const out2 = (await call('customize', 'run', 'script.sh')) as string;
      expect(out2).toBe('done-script\n');
      expect(await g.cat('/run-script-marker')).toBe('script ran as 0\n');
      expect(await g.ls('/tmp')).toEqual([]);
    });
  });
});

describe('firstboot', () => {
  it('installs the runner, a systemd unit (enabled) and the SysV script; ordered scripts run once with a log', async () => {
    await withGuest(async (g, call) => {
      await call('firstboot', 'addCommand', 'echo second >> /fb-order');
      await call('firstboot', 'addScript', 'first', 'echo first >> /fb-order', { order: 0 });
      await call('firstboot', 'addCommand', 'echo third >> /fb-order; echo marker > /fb-marker');
      expect(await g.ls('/usr/lib/guestsh-firstboot/scripts.d')).toEqual(['0000-first', '0001-echo', '0002-echo']);
      expect(await g.readlink('/etc/systemd/system/multi-user.target.wants/guestsh-firstboot.service')).toBe('/etc/systemd/system/guestsh-firstboot.service');
      expect(await g.cat('/etc/systemd/system/guestsh-firstboot.service')).toMatch(/ExecStart=\/usr\/lib\/guestsh-firstboot\/run/);
      // SysV script and rc links only on guests without systemd (the minbase test guest has none).
      const systemd = (await g.exists('/lib/systemd/systemd')) || (await g.exists('/usr/lib/systemd/systemd'));
      expect(await g.exists('/etc/rc2.d/S99guestsh-firstboot')).toBe(!systemd);
      if (!systemd) expect(await g.readlink('/etc/rc2.d/S99guestsh-firstboot')).toBe('../init.d/guestsh-firstboot');
      // What the unit does at boot, run the same way inside the guest (chrooted by the daemon).
      await g.sh('/usr/lib/guestsh-firstboot/run');
      expect(await g.cat('/fb-order')).toBe('first\nsecond\nthird\n');
      expect(await g.cat('/fb-marker')).toBe('marker\n');
      expect(await g.ls('/usr/lib/guestsh-firstboot/scripts.d')).toEqual([]);
      expect(await g.ls('/usr/lib/guestsh-firstboot/done.d')).toEqual(['0000-first', '0001-echo', '0002-echo']);
      const log = await g.cat('/var/log/guestsh-firstboot.log');
      expect(log).toMatch(/0000-first: starting/);
      expect(log).toMatch(/0002-echo: exit status 0/);
      // Run-once: the next boot runs nothing again.
      await g.sh('/usr/lib/guestsh-firstboot/run');
      expect(await g.cat('/fb-order')).toBe('first\nsecond\nthird\n');
      // New scripts continue the numbering after those already run.
      await call('firstboot', 'addCommand', 'true');
      expect(await g.ls('/usr/lib/guestsh-firstboot/scripts.d')).toEqual(['0003-true']);
      expect(await call('firstboot', 'status')).toEqual({ pending: ['0003-true'], done: ['0000-first', '0001-echo', '0002-echo'] });
    });
  });
});

describe('hardening', () => {
  it("ssh: sshd -T in the guest shows the hardened settings; the report lists them; a second run changes nothing", async () => {
    await withGuest(async (g, call) => {
      const changes = (await call('hardening', 'sshHardening')) as Change[];
      const details = changes.map((c) => c.detail);
      expect(details).toEqual(expect.arrayContaining([expect.stringMatching(/^PasswordAuthentication: .* → no$/), expect.stringMatching(/^PermitRootLogin: .* → prohibit-password$/), expect.stringMatching(/^Ciphers: /)]));
      const eff = await g.sh('mkdir -p /run/sshd; ssh-keygen -A >/dev/null 2>&1; /usr/sbin/sshd -T -f /etc/ssh/sshd_config 2>&1 || true');
      expect(eff).toMatch(/^passwordauthentication no$/m);
      expect(eff).toMatch(/^permitrootlogin without-password$/m);
      expect(eff).toMatch(/^kbdinteractiveauthentication no$/m);
      expect(eff).toMatch(/^ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr$/m);
      expect(await call('hardening', 'sshHardening')).toEqual([]);
    });
  });

  it('sysctl: a sysctl.d file with each changed key reported; idempotent', async () => {
    await withGuest(async (g, call) => {
      const changes = (await call('hardening', 'sysctlHardening')) as Change[];
      expect(changes.length).toBeGreaterThan(10);
      expect(changes.map((c) => c.detail)).toContain('net.ipv4.conf.all.accept_redirects: (kernel default) → 0');
      const text = await g.cat('/etc/sysctl.d/90-guestsh-network-hardening.conf');
      expect(text).toMatch(/^net\.ipv4\.tcp_syncookies = 1$/m);
      expect(await call('hardening', 'sysctlHardening')).toEqual([]);
    });
  });

  it('permissions: sensitive files and homes tightened, each change reported', async () => {
    await withGuest(async (g, call) => {
      await g.chmod(0o666, '/etc/shadow');
      await g.chmod(0o777, '/home/demo');
      await g.write('/etc/world-writable.conf', 'x');
      await g.chmod(0o666, '/etc/world-writable.conf');
      await g.chmod(0o755, '/root');
      const changes = (await call('hardening', 'permissionFixes')) as Change[];
      const mode = async (p: string): Promise<bigint> => (await g.statns(p)).st_mode & 0o7777n;
      expect([await mode('/etc/shadow'), await mode('/home/demo'), await mode('/etc/world-writable.conf'), await mode('/root')]).toEqual([0o640n, 0o755n, 0o664n, 0o700n]);
      expect(changes.map((c) => `${c.path} ${c.detail}`)).toEqual(
        expect.arrayContaining(['/etc/shadow mode 0666 → 0640', '/home/demo mode 0777 → 0755', '/root mode 0755 → 0700']),
      );
      expect(await call('hardening', 'permissionFixes')).toEqual([]);
    });
  });
});

// virt-sysprep 1.48's operations (`virt-sysprep --list-operations`), names only.
const SYSPREP_148 = [
  'abrt-data', 'backup-files', 'bash-history', 'blkid-tab', 'ca-certificates', 'crash-data', 'cron-spool', 'customize',
  'dhcp-client-state', 'dhcp-server-state', 'dovecot-data', 'firewall-rules', 'flag-reconfiguration', 'fs-uuids', 'ipa-client',
  'kerberos-data', 'kerberos-hostkeytab', 'logfiles', 'lvm-uuids', 'machine-id', 'mail-spool', 'net-hostname', 'net-hwaddr',
  'net-nmconn', 'pacct-log', 'package-manager-cache', 'pam-data', 'passwd-backups', 'puppet-data-log', 'rh-subscription-manager',
  'rhn-systemid', 'rpm-db', 'samba-db-log', 'script', 'smolt-uuid', 'ssh-hostkeys', 'ssh-userdir', 'sssd-db-log', 'tmp-files',
  'udev-persistent-net', 'user-account', 'utmp', 'yum-uuid',
];
const SYSPREP_148_NOT_DEFAULT = ['ca-certificates', 'firewall-rules', 'flag-reconfiguration', 'fs-uuids', 'kerberos-data', 'user-account'];

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const shadowField = async (g: G, u: string): Promise<string> => (await g.cat('/etc/shadow')).split('\n').find((l) => l.startsWith(`${u}:`))!.split(':')[1]!;
/** Whether the guest's own crypt(3) (through perl, which Debian always has) accepts the password for the user's hash. */
const passwordVerifies = async (g: G, u: string, pw: string): Promise<boolean> =>
  (await g.sh(`perl -e 'print crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? "yes" : "no"' ${shq(pw)} ${shq(await shadowField(g, u))}`)) === 'yes';
/** dpkg's two-letter state ("ii" installed, "rc" removed with configuration), or "none" when dpkg has no record or only "un" (purged). */
const dpkgStatus = async (g: G, pkg: string): Promise<string> => {
  const st = (await g.sh(`dpkg-query -W -f '\${db:Status-Abbrev}' ${pkg} 2>/dev/null || echo none`)).trim();
  return st === 'un' ? 'none' : st;
};

describe('sysprep: coverage of virt-sysprep 1.48', () => {
  it('every 1.48 operation is built or listed as not built with a reason; the default set matches', () => {
    const built = listOperations().map((o) => o.name);
    const missing = SYSPREP_148.filter((n) => !built.includes(n) && !(n in notBuilt()));
    expect(missing).toEqual([]);
    expect(Object.keys(notBuilt())).toEqual(['script']);
    expect(notBuilt()['script']).toMatch(/recipe/);
    expect(() => selectOperations({ operations: ['script'] })).toThrow(/'script' is not built in guestsh: .*FUSE/);
    // The earlier name still selects the operation.
    expect(selectOperations({ operations: ['kerberos-hostkeys'] })).toEqual(['kerberos-hostkeytab']);
    const expectedDefaults = SYSPREP_148.filter((n) => !SYSPREP_148_NOT_DEFAULT.includes(n) && n !== 'script');
    expect(defaultOperations.filter((n) => n !== 'lvm-system-devices').slice().sort()).toEqual(expectedDefaults.slice().sort());
  });

  it('lvm-uuids on the LVM guest: new PV and VG UUIDs although its LVs are mounted; mounted again after', async () => {
    await withGuest(
      async (g, call) => {
        const pvs = await g.pvs();
        const vgs = await g.vgs();
        expect(vgs.length).toBeGreaterThan(0);
        const ids = async (): Promise<string[]> => [...(await Promise.all(pvs.map((p) => g.pvuuid(p)))), ...(await Promise.all(vgs.map((v) => g.vguuid(v))))];
        const before = await ids();
        const mounts = await g.mountpoints();
        const hostname = await g.cat('/etc/hostname');
        const changes = (await call('sysprep', 'lvmUuids')) as Change[];
        const after = await ids();
        after.forEach((u, i) => expect(u).not.toBe(before[i]));
        expect(changes.map((c) => c.path)).toEqual([...pvs, ...vgs]);
        expect(await g.mountpoints()).toEqual(mounts);
        expect(await g.cat('/etc/hostname')).toBe(hostname);
      },
      { image: 'lvm' },
    );
  });

  it('flag-reconfiguration touches /.unconfigured once', async () => {
    await withGuest(async (g, call) => {
      expect(await g.exists('/.unconfigured')).toBe(false);
      expect(await call('sysprep', 'flagReconfiguration')).toEqual([{ op: 'flag-reconfiguration', action: 'created', path: '/.unconfigured' }]);
      expect(await g.isFile('/.unconfigured')).toBe(true);
      expect(await call('sysprep', 'flagReconfiguration')).toEqual([]);
    });
  });

  it('fs-uuids: both filesystems get new UUIDs, fstab follows, the guest is mounted again where it was', async () => {
    await withGuest(async (g, call) => {
      const before = { boot: await g.vfsUuid('/dev/sda1'), root: await g.vfsUuid('/dev/sda2') };
      const fstab = await g.cat('/etc/fstab');
      expect(fstab).toContain(`UUID=${before.root}\t/\t`);
      expect(fstab).toContain(`UUID=${before.boot}\t/boot\t`);
      const changes = (await call('sysprep', 'fsUuids')) as Change[];
      const after = { boot: await g.vfsUuid('/dev/sda1'), root: await g.vfsUuid('/dev/sda2') };
      expect(after.boot).not.toBe(before.boot);
      expect(after.root).not.toBe(before.root);
      expect(after.root).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(await g.mountpoints()).toEqual({ '/dev/sda2': '/', '/dev/sda1': '/boot' });
      expect(await g.cat('/etc/fstab')).toBe(fstab.replace(before.root, after.root).replace(before.boot, after.boot));
      expect(changes.map((c) => `${c.action} ${c.path}`).sort()).toEqual(['changed-uuid /dev/sda1', 'changed-uuid /dev/sda2', 'modified /etc/fstab']);
      expect(changes.find((c) => c.path === '/dev/sda2')!.detail).toBe(`${before.root} → ${after.root}`);
      // fstab's mode and owner are kept.
      const st = await g.statns('/etc/fstab');
      expect([st.st_mode & 0o7777n, st.st_uid]).toEqual([0o644n, 0n]);
    });
  });

  it('customize runs after the removals, so nothing undoes it (ssh-userdir, tmp-files)', async () => {
    await withGuest(async (g, _call, _s, { recipe }) => {
      await seed(g, { '/home/demo/.ssh/authorized_keys': 'old-key\n', '/tmp/stale': 'x' });
      const changes = (await recipe('sysprep-customize.gfs.ts', {})) as Change[];
      expect(changes.map((c) => c.op)).toEqual(['ssh-userdir', 'tmp-files', 'ssh-inject', 'ssh-inject', 'write']);
      expect(await g.cat('/home/demo/.ssh/authorized_keys')).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISysprepCustomize000000000000000000000000 sysprep@test\n');
      expect(await g.ls('/tmp')).toEqual(['written-by-customize']);
    });
  });

  it('the guestsh/sysprep ready recipe takes customize params; unknown params are refused', async () => {
    await withGuest(async (g, _call, _s, { recipe }) => {
      await seed(g, { '/var/log/syslog': 'log\n' });
      const changes = (await recipe('std-recipe.gfs.ts', { module: 'sysprep', operations: 'logfiles,customize', hostname: 'cloned', 'append-line': '/etc/motd:prepared' })) as Change[];
      expect([...new Set(changes.map((c) => c.op))]).toEqual(['logfiles', 'hostname', 'append-line']);
      expect([await g.exists('/var/log/syslog'), await g.cat('/etc/hostname'), (await g.cat('/etc/motd')).endsWith('prepared\n')]).toEqual([false, 'cloned\n', true]);
      await expect(recipe('std-recipe.gfs.ts', { module: 'sysprep', hostnam: 'x' })).rejects.toThrow(/unknown param 'hostnam'/);
    });
  });
});

describe('customize: the remaining virt-customize operations', () => {
  it('scrub removes a regular file (refuses directories and symlinks; a missing file is no change)', async () => {
    await withGuest(async (g, call) => {
      await seed(g, { '/root/secret.key': 'secret material\n', '/srv/d/x': 'x' });
      expect(await call('customize', 'scrub', '/root/secret.key')).toEqual([{ op: 'scrub', action: 'removed', path: '/root/secret.key', detail: 'scrubbed' }]);
      expect(await g.exists('/root/secret.key')).toBe(false);
      await expect(call('customize', 'scrub', '/srv/d')).rejects.toThrow(/is a directory/);
      expect(await g.exists('/srv/d/x')).toBe(true);
      await g.lnS('/etc/hostname', '/srv/link');
      await expect(call('customize', 'scrub', '/srv/link')).rejects.toThrow(/symbolic link/);
      expect(await g.cat('/etc/hostname')).toBe('guestsh-demo\n');
      expect(await call('customize', 'scrub', '/root/secret.key')).toEqual([]);
    });
  });

  it('truncate-recursive empties every regular file below, not symlink targets', async () => {
    await withGuest(async (g, call) => {
      await seed(g, { '/srv/t/a': 'aaa', '/srv/t/sub/b': 'bbb', '/srv/t/empty': '' });
      await g.lnS('/etc/hostname', '/srv/t/sub/link');
      const changes = (await call('customize', 'truncateRecursive', '/srv/t')) as Change[];
      expect(changes.map((c) => c.path).sort()).toEqual(['/srv/t/a', '/srv/t/sub/b']);
      for (const f of ['/srv/t/a', '/srv/t/sub/b', '/srv/t/empty']) expect((await g.statns(f)).st_size).toBe(0n);
      expect(await g.cat('/etc/hostname')).toBe('guestsh-demo\n');
      expect(await g.readlink('/srv/t/sub/link')).toBe('/etc/hostname');
      await expect(call('customize', 'truncateRecursive', '/srv/nothing')).rejects.toThrow(/does not exist/);
    });
  });

  it('password selectors: random (from the guest, shown in the change), file, crypto methods; the guest crypt accepts each', async () => {
    await withGuest(async (g, call) => {
      const r = (await call('customize', 'rootPassword', { random: true })) as Change[];
      const m = /^root: random password: ([A-Za-z0-9]{16})$/.exec(r[0]!.detail!);
      expect(m).not.toBeNull();
      expect(await passwordVerifies(g, 'root', m![1]!)).toBe(true);
      expect(await passwordVerifies(g, 'root', 'wrong')).toBe(false);
      // Two random passwords differ.
      const r2 = (await call('customize', 'password', 'demo', { random: true, crypto: 'sha512' })) as Change[];
      const pw2 = /random password: ([A-Za-z0-9]{16})/.exec(r2[0]!.detail!)![1]!;
      expect(pw2).not.toBe(m![1]);
      expect(await shadowField(g, 'demo')).toMatch(/^\$6\$/);
      expect(await passwordVerifies(g, 'demo', pw2)).toBe(true);
      // file: the first line of a file beside the recipe.
      await call('customize', 'password', 'demo', { file: 'password.txt', crypto: 'md5' });
      expect(await shadowField(g, 'demo')).toMatch(/^\$1\$/);
      expect(await passwordVerifies(g, 'demo', 'from-a-file-Pw1')).toBe(true);
      await call('customize', 'password', 'demo', { password: 'plain', crypto: 'sha256', locked: true });
      expect(await shadowField(g, 'demo')).toMatch(/^!\$5\$/);
      expect(await g.ls('/tmp')).toEqual([]);
      // virt-builder's selector syntax, as the ready recipe reads it.
      expect(parsePasswordSelector('random')).toEqual({ random: true });
      expect(parsePasswordSelector('locked:file:pw.txt', 'sha512')).toEqual({ file: 'pw.txt', crypto: 'sha512', locked: true });
      expect(parsePasswordSelector('password:a:b')).toEqual({ password: 'a:b' });
      expect(parsePasswordSelector('disabled')).toEqual({ disabled: true });
    });
  });

  it('the guestsh/customize ready recipe applies params in the order given', async () => {
    await withGuest(async (g, _call, _s, { recipe }) => {
      await seed(g, { '/srv/old.txt': 'old\n', '/var/log/app/x.log': 'entries\n' });
      const changes = (await recipe('std-recipe.gfs.ts', {
        module: 'customize',
        mkdir: '/srv/site',
        write: '/srv/site/index.html:<h1>hi</h1>',
        'append-line': '/srv/site/index.html:<p>more</p>',
        chmod: '0600:/srv/site/index.html',
        link: '/srv/site/index.html:/srv/l1:/srv/l2',
        scrub: '/srv/old.txt',
        'truncate-recursive': '/var/log/app',
        'password-crypto': 'sha256',
        'root-password': 'random',
        'ssh-inject': 'demo:file:key.pub',
        'run-command': 'touch /ran',
      })) as Change[];
      expect(changes.map((c) => c.op)).toEqual(['mkdir', 'write', 'append-line', 'chmod', 'link', 'link', 'scrub', 'truncate-recursive', 'password', 'ssh-inject', 'ssh-inject', 'run-command']);
      expect(await g.cat('/srv/site/index.html')).toBe('<h1>hi</h1>\n<p>more</p>\n');
      expect((await g.statns('/srv/site/index.html')).st_mode & 0o7777n).toBe(0o600n);
      expect(await g.readlink('/srv/l2')).toBe('/srv/site/index.html');
      expect(await present(g, ['/srv/old.txt', '/ran'])).toEqual({ '/srv/old.txt': false, '/ran': true });
      expect((await g.statns('/var/log/app/x.log')).st_size).toBe(0n);
      expect(await shadowField(g, 'root')).toMatch(/^\$5\$/);
      expect(changes[8]!.detail).toMatch(/^root: random password: [A-Za-z0-9]{16}, sha256$/);
      const pw = /random password: ([A-Za-z0-9]{16})/.exec(changes[8]!.detail!)![1]!;
      expect(await passwordVerifies(g, 'root', pw)).toBe(true);
      expect(await g.cat('/home/demo/.ssh/authorized_keys')).toContain('file@host');
      await expect(recipe('std-recipe.gfs.ts', { module: 'customize', 'no-such-op': 'x' })).rejects.toThrow(/unknown param 'no-such-op'/);
    });
  });

  it('uninstall (offline): apt removes cron; purge then removes its configuration', async () => {
    await withGuest(async (g, call) => {
      expect(await dpkgStatus(g, 'cron')).toBe('ii');
      expect(await g.exists('/usr/sbin/cron')).toBe(true);
      const changes = (await call('customize', 'uninstall', ['cron'])) as Change[];
      expect(changes).toContainEqual({ op: 'uninstall', action: 'removed', path: '/var/lib/dpkg/status', detail: expect.stringMatching(/^cron:\w+ \S+$/) });
      expect(await g.exists('/usr/sbin/cron')).toBe(false);
      expect(await dpkgStatus(g, 'cron')).toBe('rc');
      expect(await g.exists('/etc/init.d/cron')).toBe(true);
      expect(await call('customize', 'uninstall', 'cron', { purge: true })).toEqual([]);
      expect(await dpkgStatus(g, 'cron')).toBe('none');
      expect(await g.exists('/etc/init.d/cron')).toBe(false);
      await expect(call('customize', 'uninstall', 'no-such-package')).rejects.toThrow(/package manager failed/);
      await expect(call('customize', 'uninstall', 'x; rm -rf /')).rejects.toThrow(/not a package name/);
    });
  }, scaled(300_000));

  it('install (offline): a .deb file from the host with dpkg; package names need the network', async () => {
    await withGuest(async (g, call, _s, { out }) => {
      const src = mkdtempSync(join(tmp.dir, 'deb-'));
      mkdirSync(join(src, 'DEBIAN'));
      mkdirSync(join(src, 'usr/share/guestsh-test-pkg'), { recursive: true });
      writeFileSync(join(src, 'DEBIAN/control'), 'Package: guestsh-test-pkg\nVersion: 1.0\nArchitecture: all\nMaintainer: guestsh tests <tests@invalid>\nDescription: test package\n');
      writeFileSync(join(src, 'usr/share/guestsh-test-pkg/hello.txt'), 'installed from a local package\n');
      const deb = join(out, 'guestsh-test-pkg_1.0_all.deb');
      execFileSync('dpkg-deb', ['--root-owner-group', '--build', src, deb], { stdio: 'ignore' });
      expect(await dpkgStatus(g, 'guestsh-test-pkg')).toBe('none');
      const changes = (await call('customize', 'install', [deb])) as Change[];
      expect(changes).toEqual([{ op: 'install', action: 'created', path: '/var/lib/dpkg/status', detail: 'guestsh-test-pkg:all 1.0' }]);
      expect(await g.cat('/usr/share/guestsh-test-pkg/hello.txt')).toBe('installed from a local package\n');
      expect(await dpkgStatus(g, 'guestsh-test-pkg')).toBe('ii');
      expect(await g.ls('/tmp')).toEqual([]);
      await expect(call('customize', 'install', 'hello')).rejects.toThrow(/needs the appliance network/);
      await expect(call('customize', 'update')).rejects.toThrow(/needs the appliance network/);
    });
  }, scaled(300_000));

  it('install and update with the appliance network (the guest fetches from the mirror this machine uses)', async () => {
    const source = findAptSource('bookworm');
    await withGuest(
      async (g, call) => {
        // The test guest's sources.list was emptied at build; point it at the same mirror.
        await g.write('/etc/apt/sources.list', `deb ${source.uri} bookworm main\n`);
        expect(await g.exists('/usr/bin/hello')).toBe(false);
        const changes = (await call('customize', 'install', 'hello')) as Change[];
        expect(changes).toContainEqual({ op: 'install', action: 'created', path: '/var/lib/dpkg/status', detail: expect.stringMatching(/^hello:\w+ \S+$/) });
        expect(await g.sh('/usr/bin/hello')).toBe('Hello, world!\n');
        const updated = (await call('customize', 'update')) as Change[];
        // The guest was built from this mirror: whatever upgrades are reported are real version changes.
        for (const c of updated) expect(c).toMatchObject({ op: 'update', action: 'modified', detail: expect.stringMatching(/ → /) });
        expect(await g.sh('apt-get -s upgrade | grep -c ^Inst || true')).toBe('0\n');
      },
      { network: true, timeoutMs: 400_000 },
    );
  }, scaled(900_000));

  it('firstboot-install: a first-boot script that installs with the guest package manager', async () => {
    await withGuest(async (g, call) => {
      await call('customize', 'firstbootInstall', ['hello', 'tree']);
      const [script] = await g.ls('/usr/lib/guestsh-firstboot/scripts.d');
      expect(script).toMatch(/^\d{4}-install$/);
      const text = await g.cat(`/usr/lib/guestsh-firstboot/scripts.d/${script}`);
      expect(text).toMatch(/apt-get -q update && .*apt-get -y .* install 'hello' 'tree'\n$/);
      // The script is valid shell.
      expect(await g.sh(`sh -n /usr/lib/guestsh-firstboot/scripts.d/${script} && echo ok`)).toBe('ok\n');
    });
  });
});
