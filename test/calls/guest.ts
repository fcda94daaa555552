// Inspection, augeas and commands: the Debian test guest on /dev/sdc (added
// read-only, so writes land in a throwaway overlay), its filesystems mounted
// the way inspection says.
import A from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';
import { actionByName } from '../../src/spec/index.js';
import { checkOptionalGroup } from '../../src/runtime/session/library/index.js';
import type { Group } from './table.js';

export const guestGroup: Group = {
  fixture: 'guest',
  title: 'the Debian test guest on /dev/sdc, mounted per inspection',
  cases: [
    {
      actions: ['inspect_os'],
      async run(c) {
        A.deepEqual(await c.call('inspect_os'), [c.f.root]);
      },
    },
    {
      actions: ['inspect_get_roots', 'inspect_get_type', 'inspect_get_distro', 'inspect_get_major_version', 'inspect_get_minor_version', 'inspect_get_hostname', 'inspect_get_package_format', 'inspect_get_package_management', 'inspect_get_mountpoints', 'inspect_get_filesystems', 'inspect_get_product_name', 'inspect_get_product_variant', 'inspect_get_arch', 'inspect_get_format', 'inspect_is_live', 'inspect_is_netinst', 'inspect_is_multipart', 'inspect_get_drive_mappings', 'inspect_get_osinfo'],
      async run(c) {
        const t = c.f.truth;
        const root = c.f.root as string;
        A.deepEqual(await c.call('inspect_get_roots'), [root]);
        A.equal(await c.call('inspect_get_type', [root]), 'linux');
        A.equal(await c.call('inspect_get_distro', [root]), t.osRelease.ID);
        const [major, minor] = (t.debianVersion as string).split('.').map(Number);
        A.equal(await c.call('inspect_get_major_version', [root]), major);
        A.equal(await c.call('inspect_get_minor_version', [root]), minor);
        A.equal(await c.call('inspect_get_hostname', [root]), t.hostname);
        A.equal(await c.call('inspect_get_package_format', [root]), 'deb');
        A.equal(await c.call('inspect_get_package_management', [root]), 'apt');
        const expectMounts: Record<string, string> = {};
        for (const p of t.partitions) expectMounts[p.filesystem.mountpoint] = `/dev/sdc${p.number}`;
        A.deepEqual(await c.call('inspect_get_mountpoints', [root]), expectMounts);
        A.deepEqual((await c.call('inspect_get_filesystems', [root])).sort(), Object.values(expectMounts).sort());
        // For Debian, libguestfs names the product after /etc/debian_version.
        A.equal(await c.call('inspect_get_product_name', [root]), t.debianVersion);
        A.equal(await c.call('inspect_get_product_variant', [root]), 'unknown');
        A.equal(await c.call('inspect_get_arch', [root]), 'x86_64');
        A.equal(await c.call('inspect_get_format', [root]), 'installed');
        A.equal(await c.call('inspect_is_live', [root]), false);
        A.equal(await c.call('inspect_is_netinst', [root]), false);
        A.equal(await c.call('inspect_is_multipart', [root]), false);
        A.deepEqual(await c.call('inspect_get_drive_mappings', [root]), {});
        A.equal(await c.call('inspect_get_osinfo', [root]), `debian${major}`);
      },
    },
    {
      actions: ['inspect_list_applications2', 'inspect_list_applications'],
      async run(c) {
        const apps2 = await c.call('inspect_list_applications2', [c.f.root]);
        const truth = c.f.truth.packages as Record<string, string>;
        A.deepEqual(apps2.map((a: { app2_name: string }) => a.app2_name), Object.keys(truth).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
        for (const a of apps2) {
          const epoch = a.app2_epoch ? `${a.app2_epoch}:` : '';
          const rel = a.app2_release ? `-${a.app2_release}` : '';
          A.equal(`${epoch}${a.app2_version}${rel}`, truth[a.app2_name], a.app2_name);
        }
        const bash = apps2.find((a: { app2_name: string }) => a.app2_name === 'bash');
        A.equal(bash.app2_arch, 'amd64');
        A.ok(bash.app2_summary.length > 0);
        const apps1 = await c.call('inspect_list_applications', [c.f.root]);
        A.deepEqual(apps1.map((a: { app_name: string }) => a.app_name), apps2.map((a: { app2_name: string }) => a.app2_name));
      },
    },
    {
      actions: ['inspect_get_icon', 'read_file', 'realpath'],
      async run(c) {
        // Without a favicon, Debian's icon is its logo (empty when the guest has none).
        const logoPath = '/usr/share/pixmaps/debian-logo.png';
        const logo = (await c.call('is_file', [logoPath], { followsymlinks: true }))
          ? await c.call('read_file', [await c.call('realpath', [logoPath])])
          : Buffer.alloc(0);
        A.deepEqual(await c.call('inspect_get_icon', [c.f.root]), logo);
        const png = tinyPng(32, 32);
        await c.call('write', ['/etc/favicon.png', png]);
        A.deepEqual(await c.call('inspect_get_icon', [c.f.root]), png);
        // Favicons are never "high quality": the logo again.
        A.deepEqual(await c.call('inspect_get_icon', [c.f.root], { highquality: true }), logo);
        A.deepEqual(await c.call('inspect_get_icon', [c.f.root], { favicon: false }), logo);
        await c.call('rm', ['/etc/favicon.png']);
      },
    },
    {
      timeoutMs: 400_000,
      actions: ['aug_init', 'aug_get', 'aug_set', 'aug_match', 'aug_ls', 'aug_insert', 'aug_rm', 'aug_mv', 'aug_label', 'aug_defvar', 'aug_defnode', 'aug_setm', 'aug_clear', 'aug_save', 'aug_load', 'aug_transform', 'aug_close'],
      async run(c) {
        await c.call('aug_init', ['/', 0]);
        A.equal(await c.call('aug_get', ['/files/etc/hostname/hostname']), c.f.truth.hostname);
        const users = await c.call('aug_match', ['/files/etc/passwd/*']);
        A.ok(users.includes('/files/etc/passwd/demo'));
        A.equal(await c.call('aug_get', ['/files/etc/passwd/demo/uid']), '1000');
        A.equal(await c.call('aug_label', ['/files/etc/passwd/demo']), 'demo');
        A.ok((await c.call('aug_ls', ['/files/etc/passwd'])).includes('/files/etc/passwd/root'));
        await c.call('aug_set', ['/files/etc/hostname/hostname', 'renamed']);
        await c.call('aug_save');
        A.equal(await c.call('cat', ['/etc/hostname']), 'renamed\n');
        A.equal(await c.call('aug_defvar', ['pw', '/files/etc/passwd']), 1);
        const [n, created] = Object.values(await c.call('aug_defnode', ['nd', '/files/etc/hosts/99/ipaddr', '10.9.9.9']));
        A.deepEqual([n, created], [1, 1]);
        await c.call('aug_set', ['/files/etc/hosts/99/canonical', 'added.example']);
        await c.call('aug_insert', ['/files/etc/hosts/99/canonical', 'alias', false]);
        await c.call('aug_set', ['/files/etc/hosts/99/alias', 'added']);
        A.equal(await c.call('aug_setm', ['/files/etc/hosts/99', 'alias', 'al2']), 1);
        await c.call('aug_mv', ['/files/etc/hosts/99', '/files/etc/hosts/98']);
        await c.call('aug_save');
        A.match(await c.call('cat', ['/etc/hosts']), /10\.9\.9\.9\s+added\.example\s+al2/);
        await c.call('aug_clear', ['/files/etc/hosts/98/alias']);
        await c.fails(/NULL match/, 'aug_get', ['/files/etc/hosts/98/alias']);
        // The entry and its three children.
        A.equal(await c.call('aug_rm', ['/files/etc/hosts/98']), 4);
        await c.call('aug_save');
        A.doesNotMatch(await c.call('cat', ['/etc/hosts']), /10\.9\.9\.9/);
        await c.call('write', ['/etc/guestsh.conf', 'key = value\n']);
        await c.call('aug_transform', ['Puppet', '/etc/guestsh.conf']);
        await c.call('aug_load');
        A.deepEqual(await c.call('aug_match', ['/files/etc/guestsh.conf/*']), []);
        await c.call('aug_transform', ['Puppet', '/etc/guestsh.conf'], { remove: true });
        await c.call('aug_close');
        await c.call('write', ['/etc/hostname', `${c.f.truth.hostname}\n`]);
      },
    },
    {
      actions: ['command', 'command_lines', 'sh', 'sh_lines', 'cat', 'read_file', 'is_file', 'file_architecture', 'realpath'],
      async run(c) {
        A.equal(await c.call('command', [['/bin/echo', 'hello', 'guest']]), 'hello guest\n');
        A.deepEqual(await c.call('command_lines', [['/usr/bin/printf', 'a\\nb\\n']]), ['a', 'b']);
        A.equal(await c.call('sh', ['id -un 1000']), 'demo\n');
        A.deepEqual(await c.call('sh_lines', ['echo one; echo two']), ['one', 'two']);
        A.equal((await c.call('cat', [c.f.truth.marker.path])).trimEnd(), c.f.truth.marker.content.trimEnd());
        A.equal((await c.call('read_file', ['/etc/debian_version'])).toString().trim(), c.f.truth.debianVersion);
        A.equal(await c.call('file_architecture', ['/usr/bin/ls']), 'x86_64');
        A.match(await c.call('realpath', ['/bin/sh']), /^\/usr\/bin\/dash$/);
        A.equal(await c.call('is_file', ['/etc/os-release'], { followsymlinks: true }), true);
      },
    },
  ],
};

/** A valid w×h 8-bit grey PNG (what `file` reports as "PNG image data, w x h"). */
function tinyPng(w: number, h: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const raw = Buffer.alloc((w + 1) * h, 0x80);
  for (let y = 0; y < h; y++) raw[y * (w + 1)] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export const bootGroup: Group = {
  fixture: 'boot',
  title: 'the shared appliance, launched by the first case',
  cases: [
    {
      actions: ['launch', 'get_pid', 'get_sockdir', 'is_config'],
      async run(c) {
        await c.call('launch');
        A.equal(c.s.state, 'ready');
        A.equal(await c.call('is_config'), false);
        const pid = await c.call('get_pid');
        A.equal(pid, c.s.qemuPid);
        process.kill(pid as number, 0);
        A.equal(await c.call('get_sockdir'), c.s.runDirectory);
        await c.fails(/only be done before launch/, 'set_memsize', [512]);
      },
    },
    {
      actions: ['ping_daemon', 'echo_daemon', 'utsname', 'dmesg', 'sleep', 'modprobe', 'available_all_groups', 'available', 'feature_available', 'filesystem_available', 'get_umask'],
      async run(c) {
        await c.call('ping_daemon');
        A.equal(await c.call('echo_daemon', [['hello', 'daemon']]), 'hello daemon');
        const u = await c.call('utsname');
        A.equal(u.uts_sysname, 'Linux');
        A.equal(u.uts_machine, 'x86_64');
        A.match(await c.call('dmesg'), /Linux version/);
        const t0 = Date.now();
        await c.call('sleep', [1]);
        A.ok(Date.now() - t0 >= 900);
        await c.call('modprobe', ['loop']);
        const groups = await c.call('available_all_groups');
        A.ok(groups.includes('lvm2') && groups.includes('rsync'));
        A.equal(await c.call('feature_available', [['lvm2', 'luks']]), true);
        // Debian's optional packages (./dev installs them all) add xfs and rsync;
        // nothing in Debian adds setfiles, so selinuxrelabel stays missing.
        await c.call('available', [['lvm2', 'xfs', 'rsync']]);
        A.equal(await c.call('feature_available', [['lvm2', 'selinuxrelabel']]), false);
        await c.fails(/selinuxrelabel: group not available/, 'available', [['selinuxrelabel']]);
        await c.fails(/nosuch: unknown group/, 'feature_available', [['nosuch']]);
        // The dispatcher's check (checkOptionalGroup) names the missing group.
        await A.rejects(checkOptionalGroup(c.s, actionByName('selinux_relabel')!), /lacks the optional feature group "selinuxrelabel"/);
        await checkOptionalGroup(c.s, actionByName('rsync')!);
        A.equal(await c.call('filesystem_available', ['zfs']), false);
        A.equal(await c.call('get_umask'), 0o022);
        await c.fails(/9p support was removed/, 'list_9p');
      },
    },
  ],
};

export const lifecycleGroup: Group = {
  fixture: 'lifecycle',
  title: 'the end of the shared appliance',
  cases: [
    {
      actions: ['shutdown', 'kill_subprocess'],
      async run(c) {
        await c.call('write', ['/last-words', 'synced by shutdown']);
        const pid = c.s.qemuPid!;
        await c.call('shutdown');
        // As libguestfs: the handle is back in config, its drives released, ready for new ones.
        A.equal(c.s.state, 'config');
        A.deepEqual(c.s.drives, []);
        A.throws(() => process.kill(pid, 0));
        // autosync: the write reached the image file before qemu exited.
        A.equal(execFileSync('debugfs', ['-R', 'cat /last-words', c.f.ext4Image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), 'synced by shutdown');
        A.equal(c.s.qemuPid, null);
        // kill_subprocess (deprecated alias) with no appliance is harmless, as libguestfs's shutdown in config.
        await c.call('kill_subprocess');
        A.equal(c.s.state, 'config');
        await c.fails(/not allowed in state config/, 'ping_daemon');
      },
    },
  ],
};
