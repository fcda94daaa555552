// Handle properties, drive adding and host-side disk images: a session that
// is never launched.
import A from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Group } from './table.js';

const qemuImgInfo = (p: string) => JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', p], { encoding: 'utf8' })) as Record<string, unknown>;

export const configGroup: Group = {
  fixture: 'config',
  title: 'a session in the config state (never launched)',
  cases: [
    {
      actions: ['get_verbose', 'set_verbose', 'get_trace', 'set_trace', 'get_autosync', 'set_autosync', 'get_network', 'set_network'],
      async run(c) {
        for (const [get, set, initial] of [
          ['get_verbose', 'set_verbose', false],
          ['get_trace', 'set_trace', false],
          ['get_autosync', 'set_autosync', true],
          ['get_network', 'set_network', false],
        ] as const) {
          A.equal(await c.call(get), initial, get);
          await c.call(set, [!initial]);
          A.equal(await c.call(get), !initial, get);
          await c.call(set, [initial]);
          A.equal(await c.call(get), initial, get);
        }
        A.equal(c.s.settings.autosync, true);
      },
    },
    {
      actions: ['get_memsize', 'set_memsize', 'get_smp', 'set_smp'],
      async run(c) {
        await c.call('set_memsize', [777]);
        A.equal(await c.call('get_memsize'), 777);
        A.equal(c.s.settings.memsize, 777);
        await c.fails(/too small value for memsize/, 'set_memsize', [100]);
        await c.call('set_smp', [2]);
        A.equal(await c.call('get_smp'), 2);
        await c.fails(/invalid smp/, 'set_smp', [0]);
        await c.fails(/unsupported number of smp/, 'set_smp', [256]);
        await c.call('set_smp', [1]);
        await c.call('set_memsize', [1280]);
      },
    },
    {
      actions: ['get_pgroup', 'set_pgroup', 'get_recovery_proc', 'set_recovery_proc', 'get_selinux', 'set_selinux', 'get_direct', 'set_direct'],
      async run(c) {
        for (const [get, set] of [
          ['get_pgroup', 'set_pgroup'],
          ['get_recovery_proc', 'set_recovery_proc'],
          ['get_selinux', 'set_selinux'],
          ['get_direct', 'set_direct'],
        ] as const) {
          const before = (await c.call(get)) as boolean;
          await c.call(set, [!before]);
          A.equal(await c.call(get), !before, get);
          await c.call(set, [before]);
          A.equal(await c.call(get), before, get);
        }
      },
    },
    {
      actions: ['get_program', 'set_program', 'get_identifier', 'set_identifier'],
      async run(c) {
        A.equal(await c.call('get_program'), 'guestsh');
        await c.call('set_program', ['calls-test']);
        A.equal(await c.call('get_program'), 'calls-test');
        A.equal(await c.call('get_identifier'), '');
        await c.call('set_identifier', ['disk-1_a']);
        A.equal(await c.call('get_identifier'), 'disk-1_a');
        await c.fails(/only alphanumeric/, 'set_identifier', ['bad id!']);
        A.equal(await c.call('get_identifier'), 'disk-1_a');
      },
    },
    {
      actions: ['get_backend', 'set_backend', 'get_attach_method', 'set_attach_method'],
      async run(c) {
        A.equal(await c.call('get_backend'), 'direct');
        await c.call('set_backend', ['direct']);
        await c.call('set_attach_method', ['appliance']);
        A.equal(await c.call('get_attach_method'), 'appliance');
        await c.fails(/not supported in guestsh: .*libvirt/, 'set_backend', ['libvirt']);
        await c.fails(/invalid backend: uml/, 'set_attach_method', ['uml']);
        A.equal(await c.call('get_backend'), 'direct');
      },
    },
    {
      actions: ['get_backend_settings', 'set_backend_settings', 'get_backend_setting', 'set_backend_setting', 'clear_backend_setting'],
      async run(c) {
        A.deepEqual(await c.call('get_backend_settings'), []);
        await c.call('set_backend_settings', [['force_tcg', 'gdb=1234']]);
        A.equal(await c.call('get_backend_setting', ['force_tcg']), '1');
        A.equal(await c.call('get_backend_setting', ['gdb']), '1234');
        await c.call('set_backend_setting', ['gdb', '99']);
        A.deepEqual(await c.call('get_backend_settings'), ['force_tcg', 'gdb=99']);
        A.equal(await c.call('clear_backend_setting', ['gdb']), 1);
        A.equal(await c.call('clear_backend_setting', ['nothing']), 0);
        await c.fails(/setting not found/, 'get_backend_setting', ['gdb']);
        await c.call('set_backend_settings', [[]]);
      },
    },
    {
      actions: ['get_hv', 'set_hv', 'get_qemu', 'set_qemu', 'get_path', 'set_path', 'get_append', 'set_append'],
      async run(c) {
        // The resolved path, as guestfish answers (found here by the shell, not by guestsh's own search).
        const onPath = execFileSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).trim();
        A.equal(await c.call('get_hv'), onPath);
        A.equal(await c.call('get_qemu'), onPath);
        await c.call('set_hv', ['qemu-system-x86_64']);
        await c.call('set_hv', [onPath]);
        await c.call('set_qemu', [null]);
        await c.fails(/not supported in guestsh/, 'set_hv', ['/usr/bin/qemu-kvm']);
        A.match(await c.call('get_path'), /appliance$/);
        await c.call('set_path', [null]);
        await c.fails(/not supported in guestsh/, 'set_path', ['/usr/lib/guestfs']);
        A.equal(await c.call('get_append'), null);
        await c.call('set_append', [null]);
        await c.fails(/not supported in guestsh/, 'set_append', ['console=ttyS0']);
      },
    },
    {
      actions: ['get_tmpdir', 'set_tmpdir', 'get_cachedir', 'set_cachedir', 'get_sockdir'],
      async run(c) {
        A.equal(await c.call('get_tmpdir'), process.env.TMPDIR);
        // As in libguestfs: the directory the session's run directory goes in (it must exist).
        await c.call('set_tmpdir', ['/var/tmp']);
        A.equal(await c.call('get_tmpdir'), '/var/tmp');
        await c.fails(/the directory must exist/, 'set_tmpdir', ['/nonexistent-dir']);
        await c.call('set_tmpdir', [null]);
        A.equal(await c.call('get_tmpdir'), process.env.TMPDIR);
        A.match(await c.call('get_cachedir'), /guestsh/);
        // Stored and reported (libguestfs's tests read it back); the appliance stays under $GUESTSH_CACHE.
        await c.call('set_cachedir', ['/var/tmp']);
        A.equal(await c.call('get_cachedir'), '/var/tmp');
        await c.call('set_cachedir', [null]);
        A.match(await c.call('get_cachedir'), /guestsh/);
        // Before launch there is no run directory yet: the temp dir.
        A.ok(((await c.call('get_sockdir')) as string).startsWith(process.env.TMPDIR!));
      },
    },
    {
      actions: ['parse_environment_list', 'parse_environment'],
      async run(c) {
        await c.call('parse_environment_list', [['LIBGUESTFS_TRACE=1', 'LIBGUESTFS_MEMSIZE=900', 'LIBGUESTFS_BACKEND_SETTINGS=a=1:b', 'OTHER=x']]);
        A.equal(await c.call('get_trace'), true);
        A.equal(await c.call('get_memsize'), 900);
        A.deepEqual(await c.call('get_backend_settings'), ['a=1', 'b']);
        await c.fails(/non-boolean value/, 'parse_environment_list', [['LIBGUESTFS_DEBUG=maybe']]);
        const saved = { ...process.env };
        try {
          process.env.LIBGUESTFS_TRACE = '0';
          process.env.LIBGUESTFS_MEMSIZE = '1280';
          delete process.env.LIBGUESTFS_BACKEND_SETTINGS;
          await c.call('parse_environment');
        } finally {
          for (const k of ['LIBGUESTFS_TRACE', 'LIBGUESTFS_MEMSIZE']) {
            if (saved[k] === undefined) delete process.env[k];
            else process.env[k] = saved[k];
          }
        }
        A.equal(await c.call('get_trace'), false);
        A.equal(await c.call('get_memsize'), 1280);
        await c.call('set_backend_settings', [[]]);
      },
    },
    {
      actions: ['version', 'is_config', 'max_disks', 'device_index', 'canonical_device_name'],
      async run(c) {
        A.deepEqual(await c.call('version'), { major: 1n, minor: 48n, release: 6n, extra: '' });
        A.equal(await c.call('is_config'), true);
        A.equal(await c.call('max_disks'), 255);
        A.equal(await c.call('device_index', ['/dev/sda']), 0);
        A.equal(await c.call('device_index', ['/dev/vdc']), 2);
        A.equal(await c.call('device_index', ['/dev/sdab']), 27);
        await c.fails(/device not found/, 'device_index', ['/dev/md0']);
        // Names that need no appliance: hd/vd/xvd → sd, others unchanged.
        A.equal(await c.call('canonical_device_name', ['/dev/vdb1']), '/dev/sdb1');
        A.equal(await c.call('canonical_device_name', ['/dev/hda']), '/dev/sda');
        A.equal(await c.call('canonical_device_name', ['/dev/xvdc2']), '/dev/sdc2');
        A.equal(await c.call('canonical_device_name', ['/dev/md127']), '/dev/md127');
      },
    },
    {
      actions: ['disk_create', 'disk_format', 'disk_virtual_size', 'disk_has_backing_file'],
      async run(c) {
        const raw = join(c.tmp, 'created.raw');
        const qcow = join(c.tmp, 'created.qcow2');
        const over = join(c.tmp, 'over.qcow2');
        await c.call('disk_create', [raw, 'raw', 10n * 1024n * 1024n], { preallocation: 'sparse' });
        await c.call('disk_create', [qcow, 'qcow2', 64n * 1024n * 1024n], { compat: '1.1', clustersize: 65536, preallocation: 'metadata' });
        await c.call('disk_create', [over, 'qcow2', -1n], { backingfile: qcow });
        A.equal(await c.call('disk_format', [raw]), 'raw');
        A.equal(await c.call('disk_format', [qcow]), 'qcow2');
        A.equal(await c.call('disk_virtual_size', [raw]), 10n * 1024n * 1024n);
        A.equal(await c.call('disk_virtual_size', [over]), 64n * 1024n * 1024n);
        A.equal(await c.call('disk_has_backing_file', [over]), true);
        A.equal(await c.call('disk_has_backing_file', [qcow]), false);
        const info = qemuImgInfo(qcow) as { 'cluster-size': number; 'format-specific': { data: { compat: string } } };
        A.equal(info['cluster-size'], 65536);
        A.equal(info['format-specific'].data.compat, '1.1');
        A.equal((qemuImgInfo(over) as { 'backing-filename-format': string })['backing-filename-format'], 'qcow2');
        await c.fails(/backingfile parameter cannot be used with raw format/, 'disk_create', [join(c.tmp, 'x.raw'), 'raw', -1n], { backingfile: qcow });
        await c.fails(/size must be passed as -1/, 'disk_create', [join(c.tmp, 'x.qcow2'), 'qcow2', 5n], { backingfile: qcow });
        await c.fails(/unsupported format/, 'disk_create', [join(c.tmp, 'x.vmdk'), 'vmdk', 5n]);
        await c.fails(/invalid value for clustersize/, 'disk_create', [join(c.tmp, 'x.qcow2'), 'qcow2', 5n], { clustersize: 1000 });
        await c.fails(/No such file/, 'disk_format', [join(c.tmp, 'missing.img')]);
      },
    },
    {
      actions: ['add_drive', 'add_drive_ro', 'add_cdrom', 'add_drive_scratch'],
      async run(c) {
        const img = join(c.tmp, 'add.raw');
        writeFileSync(img, Buffer.alloc(1024 * 1024));
        await c.call('add_drive', [img], { format: 'raw', label: 'first', cachemode: 'writeback' });
        await c.call('add_drive_ro', [img]);
        await c.call('add_cdrom', [img]);
        await c.call('add_drive_scratch', [2n * 1024n * 1024n], { label: 'scratch' });
        A.deepEqual(
          c.s.drives.map((d) => [d.format, d.readonly, d.label ?? null]),
          [
            ['raw', false, 'first'],
            ['raw', true, null],
            ['raw', true, null],
            ['qcow2', false, 'scratch'],
          ],
        );
        await c.fails(/not supported in guestsh: .*local image files/, 'add_drive', [img], { protocol: 'nbd', server: ['localhost'] });
        await c.fails(/not supported in guestsh: .*virtio-scsi/, 'add_drive', [img], { iface: 'ide' });
        await c.fails(/does not exist/, 'add_drive', [join(c.tmp, 'nope.img')]);
        await c.fails(/hotplugging support was removed/, 'remove_drive', ['first']);
      },
    },
  ],
};
