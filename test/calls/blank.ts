// Block devices, partitioning, filesystems, LVM, LUKS, md, btrfs, xfs:
// blank scratch disks /dev/sda (1 GiB), /dev/sdd and /dev/sde (256 MiB each,
// sdd labelled "scratchd"). Each case leaves the disks unmounted.
import A from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import type { Ctx, Group } from './table.js';

const MiB = 1024n * 1024n;
const sectors = (mib: bigint) => (mib * MiB) / 512n;
const blockCount = (l: Record<string, string>) => l['Block count'];

async function twoPartitions(c: Ctx, dev = '/dev/sda', type = 'gpt'): Promise<void> {
  await c.call('part_init', [dev, type]);
  await c.call('part_add', [dev, 'p', 2048n, sectors(200n) - 1n]);
  await c.call('part_add', [dev, 'p', sectors(200n), sectors(400n) - 1n]);
}

const sdaParts = async (c: Ctx): Promise<string[]> => (await c.call('list_partitions')).filter((p: string) => p.startsWith('/dev/sda'));

const GPT_LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const GPT_SWAP = '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F';

export const blankGroup: Group = {
  fixture: 'blank',
  title: 'blank scratch disks sda (1 GiB), sdd and sde (128 MiB)',
  cases: [
    {
      actions: ['list_devices', 'nr_devices', 'list_disk_labels', 'is_whole_device', 'canonical_device_name', 'device_index'],
      async run(c) {
        A.deepEqual(await c.call('list_devices'), ['/dev/sda', '/dev/sdb', '/dev/sdc', '/dev/sdd', '/dev/sde']);
        A.equal(await c.call('nr_devices'), 5);
        A.deepEqual(await c.call('list_disk_labels'), { scratchd: '/dev/sdd' });
        A.equal(await c.call('is_whole_device', ['/dev/sda']), true);
        A.equal(await c.call('device_index', ['/dev/sdd']), 3);
        A.equal(await c.call('canonical_device_name', ['/dev/vdd']), '/dev/sdd');
      },
    },
    {
      actions: ['blockdev_getsize64', 'blockdev_getsz', 'blockdev_getss', 'blockdev_getbsz', 'blockdev_setbsz', 'blockdev_setro', 'blockdev_getro', 'blockdev_setrw', 'blockdev_setra', 'blockdev_flushbufs', 'blockdev_rereadpt'],
      async run(c) {
        A.equal(await c.call('blockdev_getsize64', ['/dev/sda']), 1024n * MiB);
        A.equal(await c.call('blockdev_getsz', ['/dev/sda']), sectors(1024n));
        A.equal(await c.call('blockdev_getss', ['/dev/sda']), 512);
        A.equal(await c.call('blockdev_getbsz', ['/dev/sda']), 4096);
        await c.call('blockdev_setbsz', ['/dev/sda', 4096]);
        await c.call('blockdev_setro', ['/dev/sde']);
        A.equal(await c.call('blockdev_getro', ['/dev/sde']), true);
        await c.fails(/./, 'pwrite_device', ['/dev/sde', 'x', 0n]);
        await c.call('blockdev_setrw', ['/dev/sde']);
        A.equal(await c.call('blockdev_getro', ['/dev/sde']), false);
        await c.call('blockdev_setra', ['/dev/sda', 512]);
        await c.call('blockdev_flushbufs', ['/dev/sda']);
        await c.call('blockdev_rereadpt', ['/dev/sda']);
      },
    },
    {
      actions: ['pwrite_device', 'pread_device', 'zero_device', 'is_zero_device', 'zero', 'copy_device_to_device', 'checksum_device', 'compress_device_out', 'copy_size', 'dd', 'download', 'download_offset', 'upload', 'upload_offset', 'blkdiscard', 'blkdiscardzeroes'],
      async run(c) {
        A.equal(await c.call('pwrite_device', ['/dev/sdd', 'guestsh!', 4096n]), 8);
        A.equal((await c.call('pread_device', ['/dev/sdd', 8, 4096n])).toString(), 'guestsh!');
        A.equal(await c.call('is_zero_device', ['/dev/sdd']), false);
        await c.call('copy_device_to_device', ['/dev/sdd', '/dev/sde'], { size: 8192n });
        A.equal((await c.call('pread_device', ['/dev/sde', 8, 4096n])).toString(), 'guestsh!');
        await c.call('copy_device_to_device', ['/dev/sdd', '/dev/sde'], { srcoffset: 4096n, destoffset: 65536n, size: 8n });
        A.equal((await c.call('pread_device', ['/dev/sde', 8, 65536n])).toString(), 'guestsh!');
        const md5 = await c.call('checksum_device', ['md5', '/dev/sdd']);
        A.match(md5, /^[0-9a-f]{32}$/);
        await c.call('copy_size', ['/dev/sdd', '/dev/sde', 128n * MiB]);
        A.equal(await c.call('checksum_device', ['md5', '/dev/sde']), md5);
        await c.call('zero_device', ['/dev/sde']);
        A.equal(await c.call('is_zero_device', ['/dev/sde']), true);
        await c.call('dd', ['/dev/sdd', '/dev/sde']);
        A.equal(await c.call('checksum_device', ['md5', '/dev/sde']), md5);
        // zero only clears the first blocks of the device.
        await c.call('zero', ['/dev/sde']);
        A.equal(await c.call('is_zero_device', ['/dev/sde']), true);
        const gz: Buffer[] = [];
        await c.call('compress_device_out', ['gzip', '/dev/sdd', '-'], { level: 1 }, { fileOut: (b) => void gz.push(Buffer.from(b)) });
        const plain = gunzipSync(Buffer.concat(gz));
        A.equal(plain.length, 128 * 1024 * 1024);
        A.equal(plain.subarray(4096, 4104).toString(), 'guestsh!');
        const head: Buffer[] = [];
        await c.call('download_offset', ['/dev/sdd', '-', 4096n, 8n], {}, { fileOut: (b) => void head.push(Buffer.from(b)) });
        A.equal(Buffer.concat(head).toString(), 'guestsh!');
        const one = async function* () {
          yield Buffer.from('uploaded');
        };
        await c.call('upload_offset', ['-', '/dev/sde', 1000n], {}, { fileIn: one() });
        A.equal((await c.call('pread_device', ['/dev/sde', 8, 1000n])).toString(), 'uploaded');
        await c.call('upload', ['-', '/dev/sde'], {}, { fileIn: one() });
        A.equal((await c.call('pread_device', ['/dev/sde', 8, 0n])).toString(), 'uploaded');
        const all: Buffer[] = [];
        await c.call('download', ['/dev/sde', '-'], {}, { fileOut: (b) => void all.push(Buffer.from(b)) });
        A.equal(Buffer.concat(all).length, 128 * 1024 * 1024);
        // The scratch disks are qcow2 on virtio-scsi: discard works, zeroes are not promised.
        A.equal(typeof (await c.call('blkdiscardzeroes', ['/dev/sde'])), 'boolean');
        await c.call('blkdiscard', ['/dev/sde']);
        await c.call('zero_device', ['/dev/sdd']);
        await c.call('zero_device', ['/dev/sde']);
      },
    },
    {
      actions: ['part_init', 'part_add', 'part_get_parttype', 'part_list', 'list_partitions', 'part_to_dev', 'part_to_partnum', 'part_set_name', 'part_get_name', 'part_set_gpt_type', 'part_get_gpt_type', 'part_set_gpt_guid', 'part_get_gpt_guid', 'part_set_gpt_attributes', 'part_get_gpt_attributes', 'part_set_disk_guid', 'part_get_disk_guid', 'part_set_disk_guid_random', 'part_resize', 'part_del', 'part_expand_gpt', 'is_whole_device'],
      async run(c) {
        await twoPartitions(c);
        A.equal(await c.call('part_get_parttype', ['/dev/sda']), 'gpt');
        const list = await c.call('part_list', ['/dev/sda']);
        A.deepEqual(list.map((p: Record<string, unknown>) => [p.part_num, p.part_start, p.part_size]), [
          [1, 1048576n, 199n * MiB],
          [2, 200n * MiB, 200n * MiB],
        ]);
        A.deepEqual(await sdaParts(c), ['/dev/sda1', '/dev/sda2']);
        A.equal(await c.call('part_to_dev', ['/dev/sda2']), '/dev/sda');
        A.equal(await c.call('part_to_partnum', ['/dev/sda2']), 2);
        A.equal(await c.call('is_whole_device', ['/dev/sda2']), false);
        await c.call('part_set_name', ['/dev/sda', 1, 'data_one']);
        A.equal(await c.call('part_get_name', ['/dev/sda', 1]), 'data_one');
        await c.call('part_set_gpt_type', ['/dev/sda', 2, GPT_SWAP]);
        A.equal(await c.call('part_get_gpt_type', ['/dev/sda', 2]), GPT_SWAP);
        A.equal(await c.call('part_get_gpt_type', ['/dev/sda', 1]), GPT_LINUX);
        const guid = '01234567-89AB-CDEF-0123-456789ABCDEF';
        await c.call('part_set_gpt_guid', ['/dev/sda', 1, guid]);
        A.equal(await c.call('part_get_gpt_guid', ['/dev/sda', 1]), guid);
        await c.call('part_set_gpt_attributes', ['/dev/sda', 1, 4n]);
        A.equal(await c.call('part_get_gpt_attributes', ['/dev/sda', 1]), 4n);
        const disk = 'FEDCBA98-7654-3210-FEDC-BA9876543210';
        await c.call('part_set_disk_guid', ['/dev/sda', disk]);
        A.equal(await c.call('part_get_disk_guid', ['/dev/sda']), disk);
        await c.call('part_set_disk_guid_random', ['/dev/sda']);
        const random = await c.call('part_get_disk_guid', ['/dev/sda']);
        A.match(random, /^[0-9A-F-]{36}$/);
        A.notEqual(random, disk);
        await c.call('part_resize', ['/dev/sda', 2, sectors(600n) - 1n]);
        A.equal((await c.call('part_list', ['/dev/sda']))[1].part_size, 400n * MiB);
        await c.call('part_del', ['/dev/sda', 2]);
        A.deepEqual(await sdaParts(c), ['/dev/sda1']);
        await c.call('part_expand_gpt', ['/dev/sda']);
        A.equal(await c.call('part_get_parttype', ['/dev/sda']), 'gpt');
      },
    },
    {
      actions: ['part_disk', 'part_set_mbr_id', 'part_get_mbr_id', 'part_set_bootable', 'part_get_bootable', 'part_get_mbr_part_type'],
      async run(c) {
        await c.call('part_init', ['/dev/sda', 'mbr']);
        A.equal(await c.call('part_get_parttype', ['/dev/sda']), 'msdos');
        await c.call('part_add', ['/dev/sda', 'p', 2048n, sectors(100n) - 1n]);
        await c.call('part_add', ['/dev/sda', 'e', sectors(100n), sectors(500n) - 1n]);
        await c.call('part_add', ['/dev/sda', 'l', sectors(100n) + 2048n, sectors(300n) - 1n]);
        A.equal(await c.call('part_get_mbr_part_type', ['/dev/sda', 1]), 'primary');
        A.equal(await c.call('part_get_mbr_part_type', ['/dev/sda', 2]), 'extended');
        A.equal(await c.call('part_get_mbr_part_type', ['/dev/sda', 5]), 'logical');
        await c.call('part_set_mbr_id', ['/dev/sda', 1, 0x83]);
        A.equal(await c.call('part_get_mbr_id', ['/dev/sda', 1]), 0x83);
        await c.call('part_set_mbr_id', ['/dev/sda', 5, 0x82]);
        A.equal(await c.call('part_get_mbr_id', ['/dev/sda', 5]), 0x82);
        A.equal(await c.call('part_get_bootable', ['/dev/sda', 1]), false);
        await c.call('part_set_bootable', ['/dev/sda', 1, true]);
        A.equal(await c.call('part_get_bootable', ['/dev/sda', 1]), true);
        await c.call('part_disk', ['/dev/sda', 'mbr']);
        A.deepEqual(await sdaParts(c), ['/dev/sda1']);
        // part_disk leaves parted's alignment at 128 sectors on a disk this size.
        A.equal((await c.call('part_list', ['/dev/sda']))[0].part_start, 65536n);
      },
    },
    {
      actions: ['sfdisk', 'sfdisk_N', 'sfdisk_l', 'sfdisk_kernel_geometry'],
      async run(c) {
        await c.call('zero', ['/dev/sda']);
        await c.call('sfdisk', ['/dev/sda', 0, 0, 0, ['label: dos', ',100M', ',']]);
        A.equal((await c.call('part_list', ['/dev/sda'])).length, 2);
        await c.call('sfdisk_N', ['/dev/sda', 2, 0, 0, 0, ',100M']);
        A.equal((await c.call('part_list', ['/dev/sda']))[1].part_size, 100n * MiB);
        A.match(await c.call('sfdisk_l', ['/dev/sda']), /\/dev\/sda1/);
        A.match(await c.call('sfdisk_kernel_geometry', ['/dev/sda']), /\d/);
      },
    },
    {
      actions: ['mkfs', 'vfs_type', 'vfs_label', 'vfs_uuid', 'set_label', 'set_uuid', 'set_uuid_random', 'blkid', 'findfs_label', 'findfs_uuid', 'list_filesystems', 'get_e2label', 'set_e2label', 'get_e2uuid', 'set_e2uuid', 'tune2fs', 'tune2fs_l', 'e2fsck', 'e2fsck_f', 'fsck', 'vfs_minimum_size', 'resize2fs', 'resize2fs_size', 'resize2fs_M', 'zerofree', 'wipefs', 'filesystem_available', 'is_lv', 'mountable_device', 'mountable_subvolume'],
      async run(c) {
        await twoPartitions(c, '/dev/sda', 'mbr');
        await c.call('mkfs', ['ext4', '/dev/sda1'], { label: 'one', blocksize: 4096 });
        A.equal(await c.call('filesystem_available', ['ext4']), true);
        A.equal(await c.call('vfs_type', ['/dev/sda1']), 'ext4');
        A.equal(await c.call('vfs_label', ['/dev/sda1']), 'one');
        await c.call('set_label', ['/dev/sda1', 'uno']);
        A.equal(await c.call('get_e2label', ['/dev/sda1']), 'uno');
        await c.call('set_e2label', ['/dev/sda1', 'eins']);
        A.equal(await c.call('findfs_label', ['eins']), '/dev/sda1');
        const uuid = '11111111-2222-3333-4444-555555555555';
        await c.call('set_uuid', ['/dev/sda1', uuid]);
        A.equal(await c.call('vfs_uuid', ['/dev/sda1']), uuid);
        A.equal(await c.call('findfs_uuid', [uuid]), '/dev/sda1');
        await c.call('set_uuid_random', ['/dev/sda1']);
        const random = await c.call('get_e2uuid', ['/dev/sda1']);
        A.notEqual(random, uuid);
        await c.call('set_e2uuid', ['/dev/sda1', uuid]);
        const blkid = await c.call('blkid', ['/dev/sda1']);
        A.equal(blkid.TYPE, 'ext4');
        A.equal(blkid.UUID, uuid);
        A.equal(blkid.LABEL, 'eins');
        A.equal((await c.call('list_filesystems'))['/dev/sda1'], 'ext4');
        A.equal(await c.call('is_lv', ['/dev/sda1']), false);
        A.equal(await c.call('mountable_device', ['/dev/sda1']), '/dev/sda1');
        await c.fails(/not a btrfs subvolume/, 'mountable_subvolume', ['/dev/sda1']);
        await c.call('tune2fs', ['/dev/sda1'], { maxmountcount: 42, errorbehavior: 'remount-ro' });
        const l = await c.call('tune2fs_l', ['/dev/sda1']);
        A.equal(l['Maximum mount count'], '42');
        A.equal(l['Errors behavior'], 'Remount read-only');
        await c.call('e2fsck', ['/dev/sda1'], { correct: true });
        await c.call('e2fsck_f', ['/dev/sda1']);
        A.equal(await c.call('fsck', ['ext4', '/dev/sda1']), 0);
        const min = await c.call('vfs_minimum_size', ['/dev/sda1']);
        A.ok(min > 0n && min < 199n * MiB, String(min));
        await c.call('resize2fs_size', ['/dev/sda1', 100n * MiB]);
        A.equal(Number(blockCount(await c.call('tune2fs_l', ['/dev/sda1']))), (100 * 1024 * 1024) / 4096);
        await c.call('resize2fs', ['/dev/sda1']);
        A.equal(Number(blockCount(await c.call('tune2fs_l', ['/dev/sda1']))), (199 * 1024 * 1024) / 4096);
        await c.call('resize2fs_M', ['/dev/sda1']);
        A.ok(Number(blockCount(await c.call('tune2fs_l', ['/dev/sda1']))) < (199 * 1024 * 1024) / 4096);
        await c.call('zerofree', ['/dev/sda1']);
        await c.call('wipefs', ['/dev/sda1']);
        A.equal(await c.call('vfs_type', ['/dev/sda1']), '');
      },
    },
    {
      actions: ['mke2fs', 'mke2journal', 'mke2journal_L', 'mke2journal_U', 'mke2fs_J', 'mke2fs_JL', 'mke2fs_JU', 'mkfs_b', 'mklost_and_found', 'mount', 'umount', 'mounts', 'mountpoints', 'mount_ro', 'mount_options', 'mount_vfs', 'remount', 'umount_all', 'mkmountpoint', 'rmmountpoint', 'statvfs', 'df', 'df_h', 'sync', 'drop_caches'],
      async run(c) {
        await twoPartitions(c, '/dev/sda', 'mbr');
        await c.call('mke2fs', ['/dev/sda1'], { fstype: 'ext3', blocksize: 1024, label: 'made', inodesize: 256, reservedblockspercentage: 1 });
        A.equal(await c.call('vfs_type', ['/dev/sda1']), 'ext3');
        A.equal(await c.call('vfs_label', ['/dev/sda1']), 'made');
        A.equal((await c.call('tune2fs_l', ['/dev/sda1']))['Block size'], '1024');
        await c.call('mke2journal', [1024, '/dev/sda2']);
        A.equal(await c.call('vfs_type', ['/dev/sda2']), 'jbd');
        await c.call('mke2fs_J', ['ext4', 1024, '/dev/sda1', '/dev/sda2']);
        A.match((await c.call('tune2fs_l', ['/dev/sda1']))['Journal device'] ?? '', /0x/);
        await c.call('mke2journal_L', [1024, 'jlabel', '/dev/sda2']);
        A.equal(await c.call('vfs_label', ['/dev/sda2']), 'jlabel');
        await c.call('mke2fs_JL', ['ext4', 1024, '/dev/sda1', 'jlabel']);
        const juuid = '22222222-3333-4444-5555-666666666666';
        await c.call('mke2journal_U', [1024, juuid, '/dev/sda2']);
        A.equal(await c.call('vfs_uuid', ['/dev/sda2']), juuid);
        await c.call('mke2fs_JU', ['ext4', 1024, '/dev/sda1', juuid]);
        A.equal(await c.call('vfs_type', ['/dev/sda1']), 'ext4');
        await c.call('mkfs_b', ['ext4', 4096, '/dev/sda1']);
        A.equal((await c.call('tune2fs_l', ['/dev/sda1']))['Block size'], '4096');
        await c.call('mount', ['/dev/sda1', '/']);
        A.deepEqual(await c.call('mounts'), ['/dev/sda1']);
        A.deepEqual(await c.call('mountpoints'), { '/dev/sda1': '/' });
        await c.call('rm_rf', ['/lost+found']);
        await c.call('mklost_and_found', ['/']);
        A.equal(await c.call('is_dir', ['/lost+found']), true);
        const vfs = await c.call('statvfs', ['/']);
        A.equal(vfs.bsize, 4096n);
        A.match(await c.call('df'), /\/dev\/sda1/);
        A.match(await c.call('df_h'), /\/sysroot/);
        await c.call('sync');
        await c.call('drop_caches', [3]);
        await c.call('umount', ['/']);
        await c.call('mount_ro', ['/dev/sda1', '/']);
        await c.fails(/Read-only/i, 'touch', ['/x']);
        await c.call('remount', ['/'], { rw: true });
        await c.call('touch', ['/x']);
        await c.call('umount_all');
        A.deepEqual(await c.call('mounts'), []);
        await c.call('mount_options', ['noatime', '/dev/sda1', '/']);
        await c.call('umount', ['/dev/sda1'], { force: false });
        await c.call('mount_vfs', ['ro', 'ext4', '/dev/sda1', '/']);
        A.equal(await c.call('exists', ['/x']), true);
        await c.call('umount_all');
        await c.call('mkmountpoint', ['/mp']);
        await c.call('mount', ['/dev/sda1', '/mp']);
        A.deepEqual(await c.call('mountpoints'), { '/dev/sda1': '/mp' });
        await c.call('umount_all');
        await c.call('rmmountpoint', ['/mp']);
      },
    },
    {
      actions: ['mkswap', 'mkswap_L', 'mkswap_U', 'swapon_device', 'swapoff_device', 'swapon_label', 'swapoff_label', 'swapon_uuid', 'swapoff_uuid'],
      async run(c) {
        const uuid = '33333333-4444-5555-6666-777777777777';
        await c.call('mkswap', ['/dev/sdd'], { label: 'swp', uuid });
        A.equal(await c.call('vfs_type', ['/dev/sdd']), 'swap');
        A.equal(await c.call('vfs_uuid', ['/dev/sdd']), uuid);
        await c.call('swapon_device', ['/dev/sdd']);
        await c.call('swapoff_device', ['/dev/sdd']);
        await c.call('mkswap_L', ['swap2', '/dev/sdd']);
        A.equal(await c.call('vfs_label', ['/dev/sdd']), 'swap2');
        await c.call('swapon_label', ['swap2']);
        await c.call('swapoff_label', ['swap2']);
        await c.call('mkswap_U', [uuid, '/dev/sdd']);
        await c.call('swapon_uuid', [uuid]);
        await c.call('swapoff_uuid', [uuid]);
        await c.call('zero_device', ['/dev/sdd']);
      },
    },
    {
      timeoutMs: 400_000,
      actions: ['pvcreate', 'vgcreate', 'lvcreate', 'lvcreate_free', 'lvs', 'lvs_full', 'pvs', 'pvs_full', 'vgs', 'vgs_full', 'lvuuid', 'pvuuid', 'vguuid', 'vglvuuids', 'vgpvuuids', 'lvrename', 'vgrename', 'lvresize', 'lvresize_free', 'is_lv', 'lvm_canonical_lv_name', 'list_dm_devices', 'canonical_device_name', 'vgmeta', 'vg_activate', 'vg_activate_all', 'vgscan', 'lvm_scan', 'lvm_set_filter', 'lvm_clear_filter', 'pvresize', 'pvresize_size', 'pvchange_uuid', 'pvchange_uuid_all', 'vgchange_uuid', 'vgchange_uuid_all', 'lvremove', 'vgremove', 'pvremove', 'lvm_remove_all'],
      async run(c) {
        await twoPartitions(c, '/dev/sda', 'mbr');
        await c.call('pvcreate', ['/dev/sda1']);
        await c.call('pvcreate', ['/dev/sda2']);
        await c.call('vgcreate', ['vg0', ['/dev/sda1', '/dev/sda2']]);
        await c.call('lvcreate', ['lv1', 'vg0', 64]);
        await c.call('lvcreate_free', ['lv2', 'vg0', 50]);
        A.deepEqual(await c.call('lvs'), ['/dev/vg0/lv1', '/dev/vg0/lv2']);
        A.deepEqual(await c.call('pvs'), ['/dev/sda1', '/dev/sda2']);
        A.deepEqual(await c.call('vgs'), ['vg0']);
        const lvs = await c.call('lvs_full');
        A.equal(lvs[0].lv_name, 'lv1');
        A.equal(lvs[0].lv_size, 64n * MiB);
        const pvs = await c.call('pvs_full');
        A.equal(pvs[0].pv_name, '/dev/sda1');
        const vgs = await c.call('vgs_full');
        A.equal(vgs[0].vg_name, 'vg0');
        A.equal(vgs[0].pv_count, 2n);
        A.equal(vgs[0].lv_count, 2n);
        const compact = (u: string) => u.replace(/-/g, '');
        A.equal(compact(await c.call('lvuuid', ['/dev/vg0/lv1'])), lvs[0].lv_uuid);
        A.equal(compact(await c.call('pvuuid', ['/dev/sda1'])), pvs[0].pv_uuid);
        A.equal(compact(await c.call('vguuid', ['vg0'])), vgs[0].vg_uuid);
        A.equal((await c.call('vglvuuids', ['vg0'])).length, 2);
        A.deepEqual((await c.call('vgpvuuids', ['vg0'])).map(compact).sort(), pvs.map((p: { pv_uuid: string }) => p.pv_uuid).sort());
        A.equal(await c.call('is_lv', ['/dev/vg0/lv1']), true);
        A.equal(await c.call('lvm_canonical_lv_name', ['/dev/mapper/vg0-lv1']), '/dev/vg0/lv1');
        A.equal(await c.call('canonical_device_name', ['/dev/mapper/vg0-lv1']), '/dev/vg0/lv1');
        // LVs are not listed among the device-mapper devices.
        A.deepEqual(await c.call('list_dm_devices'), []);
        await c.call('lvrename', ['/dev/vg0/lv2', '/dev/vg0/big']);
        await c.call('vgrename', ['vg0', 'vg1']);
        A.deepEqual(await c.call('lvs'), ['/dev/vg1/big', '/dev/vg1/lv1']);
        await c.call('lvresize', ['/dev/vg1/lv1', 128]);
        A.equal((await c.call('lvs_full')).find((l: { lv_name: string }) => l.lv_name === 'lv1').lv_size, 128n * MiB);
        await c.call('lvresize_free', ['/dev/vg1/lv1', 100]);
        A.match((await c.call('vgmeta', ['vg1'])).toString(), /vg1 \{/);
        await c.call('vg_activate', [false, ['vg1']]);
        const active = async () => (await c.call('lvs_full')).map((l: { lv_attr: string }) => l.lv_attr[4]);
        A.deepEqual(await active(), ['-', '-']);
        await c.call('vg_activate_all', [true]);
        A.deepEqual(await active(), ['a', 'a']);
        await c.call('vgscan');
        await c.call('lvm_scan', [true]);
        await c.call('lvm_set_filter', [['/dev/sda1', '/dev/sda2']]);
        A.deepEqual(await c.call('vgs'), ['vg1']);
        await c.call('lvm_clear_filter');
        const oldPv = await c.call('pvuuid', ['/dev/sda1']);
        await c.call('vg_activate_all', [false]);
        await c.call('pvchange_uuid', ['/dev/sda1']);
        A.notEqual(await c.call('pvuuid', ['/dev/sda1']), oldPv);
        await c.call('pvchange_uuid_all');
        const oldVg = await c.call('vguuid', ['vg1']);
        await c.call('vgchange_uuid', ['vg1']);
        A.notEqual(await c.call('vguuid', ['vg1']), oldVg);
        await c.call('vgchange_uuid_all');
        await c.call('vg_activate_all', [true]);
        await c.call('lvremove', ['/dev/vg1/big']);
        A.deepEqual(await c.call('lvs'), ['/dev/vg1/lv1']);
        await c.call('lvremove', ['/dev/vg1/lv1']);
        await c.call('vgremove', ['vg1']);
        await c.call('pvresize_size', ['/dev/sda2', 100n * MiB]);
        A.equal((await c.call('pvs_full')).find((p: { pv_name: string }) => p.pv_name === '/dev/sda2').pv_size, 100n * MiB);
        await c.call('pvresize', ['/dev/sda2']);
        await c.call('pvremove', ['/dev/sda2']);
        A.deepEqual(await c.call('pvs'), ['/dev/sda1']);
        await c.call('vgcreate', ['vg2', ['/dev/sda1']]);
        await c.call('lvm_remove_all');
        A.deepEqual(await c.call('vgs'), []);
        A.deepEqual(await c.call('pvs'), []);
      },
    },
    {
      timeoutMs: 400_000,
      actions: ['list_dm_devices', 'luks_format', 'luks_open', 'luks_close', 'luks_open_ro', 'luks_uuid', 'luks_add_key', 'luks_kill_slot', 'cryptsetup_open', 'cryptsetup_close', 'luks_format_cipher'],
      async run(c) {
        await c.call('luks_format', ['/dev/sdd', 'key0', 0]);
        A.equal(await c.call('vfs_type', ['/dev/sdd']), 'crypto_LUKS');
        A.match(await c.call('luks_uuid', ['/dev/sdd']), /^[0-9a-f-]{36}$/);
        await c.call('luks_open', ['/dev/sdd', 'key0', 'secret']);
        A.deepEqual(await c.call('list_dm_devices'), ['/dev/mapper/secret']);
        await c.call('mkfs', ['ext2', '/dev/mapper/secret']);
        await c.call('luks_close', ['/dev/mapper/secret']);
        await c.call('luks_add_key', ['/dev/sdd', 'key0', 'key1', 1]);
        await c.call('luks_open_ro', ['/dev/sdd', 'key1', 'ro']);
        A.equal(await c.call('vfs_type', ['/dev/mapper/ro']), 'ext2');
        A.equal(await c.call('blockdev_getro', ['/dev/mapper/ro']), true);
        await c.call('luks_close', ['/dev/mapper/ro']);
        await c.call('luks_kill_slot', ['/dev/sdd', 'key1', 0]);
        await c.fails(/./, 'luks_open', ['/dev/sdd', 'key0', 'gone']);
        await c.call('cryptsetup_open', ['/dev/sdd', 'key1', 'again'], { readonly: true, crypttype: 'luks' });
        A.equal(await c.call('vfs_type', ['/dev/mapper/again']), 'ext2');
        await c.call('cryptsetup_close', ['/dev/mapper/again']);
        await c.call('luks_format_cipher', ['/dev/sde', 'k', 0, 'aes-xts-plain64']);
        A.equal(await c.call('vfs_type', ['/dev/sde']), 'crypto_LUKS');
        await c.call('zero_device', ['/dev/sdd']);
        await c.call('zero_device', ['/dev/sde']);
      },
    },
    {
      timeoutMs: 300_000,
      actions: ['mkfs_btrfs', 'btrfs_filesystem_show', 'btrfs_subvolume_create', 'btrfs_subvolume_list', 'btrfs_subvolume_show', 'btrfs_subvolume_snapshot', 'btrfs_subvolume_get_default', 'btrfs_subvolume_set_default', 'btrfs_subvolume_delete', 'btrfs_filesystem_sync', 'btrfs_filesystem_balance', 'btrfs_filesystem_defragment', 'btrfs_quota_enable', 'btrfs_quota_rescan', 'btrfs_qgroup_create', 'btrfs_qgroup_show', 'btrfs_qgroup_limit', 'btrfs_qgroup_assign', 'btrfs_qgroup_remove', 'btrfs_qgroup_destroy', 'btrfs_scrub_start', 'btrfs_scrub_status', 'btrfs_balance_status', 'btrfs_device_add', 'btrfs_device_delete', 'mountable_device', 'mountable_subvolume'],
      async run(c) {
        await c.call('mkfs_btrfs', [['/dev/sdd']], { label: 'bt' });
        A.equal(await c.call('vfs_type', ['/dev/sdd']), 'btrfs');
        await c.call('mount', ['/dev/sdd', '/']);
        A.ok((await c.call('btrfs_filesystem_show', ['/dev/sdd'])).some((l: string) => l.includes('/dev/sdd')));

        await c.call('btrfs_subvolume_create', ['/sub']);
        await c.call('write', ['/sub/f', 'in sub']);
        await c.call('btrfs_subvolume_snapshot', ['/sub', '/snap'], { ro: true });
        const subs = await c.call('btrfs_subvolume_list', ['/']);
        A.deepEqual(subs.map((s: { btrfssubvolume_path: string }) => s.btrfssubvolume_path).sort(), ['snap', 'sub']);
        const show = await c.call('btrfs_subvolume_show', ['/snap']);
        A.match(show.Flags ?? show.flags ?? '', /readonly/);
        const id = subs.find((s: { btrfssubvolume_path: string }) => s.btrfssubvolume_path === 'sub').btrfssubvolume_id;
        A.equal(await c.call('btrfs_subvolume_get_default', ['/']), 5n);
        await c.call('btrfs_subvolume_set_default', [id, '/']);
        A.equal(await c.call('btrfs_subvolume_get_default', ['/']), id);
        await c.call('btrfs_subvolume_set_default', [5n, '/']);
        A.equal(await c.call('mountable_device', ['btrfsvol:/dev/sdd/sub']), '/dev/sdd');
        A.equal(await c.call('mountable_subvolume', ['btrfsvol:/dev/sdd/sub']), 'sub');
        await c.call('btrfs_filesystem_sync', ['/']);
        await c.call('btrfs_filesystem_defragment', ['/sub'], { flush: true });
        await c.call('btrfs_filesystem_balance', ['/']);
        const bal = await c.call('btrfs_balance_status', ['/']);
        A.equal(bal.btrfsbalance_status, 'none');
        await c.call('btrfs_quota_enable', ['/', true]);
        await c.call('btrfs_quota_rescan', ['/']);
        await c.call('btrfs_qgroup_create', ['1/0', '/']);
        await c.call('btrfs_qgroup_limit', ['/sub', 10n * MiB]);
        await c.call('btrfs_qgroup_assign', [`0/${id}`, '1/0', '/']);
        const qg = await c.call('btrfs_qgroup_show', ['/']);
        A.ok(qg.some((q: { btrfsqgroup_id: string }) => q.btrfsqgroup_id === '1/0'));
        await c.call('btrfs_qgroup_remove', [`0/${id}`, '1/0', '/']);
        await c.call('btrfs_qgroup_destroy', ['1/0', '/']);
        A.ok(!(await c.call('btrfs_qgroup_show', ['/'])).some((q: { btrfsqgroup_id: string }) => q.btrfsqgroup_id === '1/0'));
        await c.call('btrfs_scrub_start', ['/']);
        const scrub = await c.call('btrfs_scrub_status', ['/']);
        A.equal(typeof scrub.btrfsscrub_data_extents_scrubbed, 'bigint');
        await c.call('btrfs_device_add', [['/dev/sde'], '/']);
        A.ok((await c.call('btrfs_filesystem_show', ['/dev/sdd'])).some((l: string) => l.includes('/dev/sde')));
        await c.call('btrfs_device_delete', [['/dev/sde'], '/']);
        await c.call('btrfs_subvolume_delete', ['/snap']);
        A.deepEqual((await c.call('btrfs_subvolume_list', ['/'])).map((s: { btrfssubvolume_path: string }) => s.btrfssubvolume_path), ['sub']);
        await c.call('umount_all');
      },
    },
    {
      timeoutMs: 300_000,
      actions: ['btrfs_fsck', 'btrfs_set_seeding', 'btrfstune_seeding', 'btrfstune_enable_extended_inode_refs', 'btrfstune_enable_skinny_metadata_extent_refs', 'btrfs_rescue_super_recover', 'btrfs_rescue_chunk_recover', 'btrfs_replace', 'btrfs_balance_pause', 'btrfs_balance_resume', 'btrfs_balance_cancel', 'btrfs_scrub_cancel', 'btrfs_scrub_resume'],
      async run(c) {
        await c.call('mkfs_btrfs', [['/dev/sdd']]);
        await c.call('btrfs_fsck', ['/dev/sdd']);
        await c.call('btrfstune_enable_extended_inode_refs', ['/dev/sdd']);
        await c.call('btrfstune_enable_skinny_metadata_extent_refs', ['/dev/sdd']);
        await c.call('btrfs_rescue_super_recover', ['/dev/sdd']);
        await c.call('btrfs_rescue_chunk_recover', ['/dev/sdd']);
        await c.call('btrfs_set_seeding', ['/dev/sdd', true]);
        await c.call('btrfstune_seeding', ['/dev/sdd', false]);
        await c.call('mount', ['/dev/sdd', '/']);
        // Nothing is running: these report so.
        await c.fails(/not in progress|No such|not running|Not running/i, 'btrfs_balance_pause', ['/']);
        await c.fails(/not in progress|No such|not paused|Not running/i, 'btrfs_balance_resume', ['/']);
        await c.fails(/not in progress|No such|Not running/i, 'btrfs_balance_cancel', ['/']);
        await c.fails(/not running|No such|Not running/i, 'btrfs_scrub_cancel', ['/']);
        await c.fails(/no scrub|not running|resume|No such/i, 'btrfs_scrub_resume', ['/']);
        await c.call('btrfs_replace', ['/dev/sdd', '/dev/sde', '/']);
        A.ok((await c.call('btrfs_filesystem_show', ['/dev/sde'])).some((l: string) => l.includes('/dev/sde')));
        await c.call('umount_all');
        await c.call('zero_device', ['/dev/sdd']);
        await c.call('zero_device', ['/dev/sde']);
      },
    },
    {
      actions: ['xfs_info', 'xfs_admin', 'xfs_growfs', 'xfs_repair'],
      async run(c) {
        await c.call('part_init', ['/dev/sda', 'mbr']);
        await c.call('part_add', ['/dev/sda', 'p', 2048n, sectors(400n) - 1n]);
        await c.call('mkfs', ['xfs', '/dev/sda1']);
        await c.call('xfs_admin', ['/dev/sda1'], { label: 'xfsl' });
        A.equal(await c.call('vfs_label', ['/dev/sda1']), 'xfsl');
        A.equal(await c.call('xfs_repair', ['/dev/sda1'], { nomodify: true }), 0);
        await c.call('part_resize', ['/dev/sda', 1, sectors(800n) - 1n]);
        await c.call('mount', ['/dev/sda1', '/']);
        const before = (await c.call('xfs_info', ['/'])).xfs_datablocks as bigint;
        await c.call('xfs_growfs', ['/'], { datasec: true });
        const info = await c.call('xfs_info', ['/dev/sda1']);
        A.ok(info.xfs_datablocks > before);
        A.equal(info.xfs_blocksize, 4096);
        await c.call('umount_all');
      },
    },
    {
      actions: ['f2fs_expand', 'ntfs_3g_probe', 'ntfsfix', 'ntfsresize', 'ntfsresize_size', 'ntfsclone_out', 'ntfsclone_in', 'syslinux', 'extlinux'],
      async run(c) {
        await c.call('part_init', ['/dev/sda', 'mbr']);
        await c.call('part_add', ['/dev/sda', 'p', 2048n, sectors(200n) - 1n]);
        await c.call('part_add', ['/dev/sda', 'p', sectors(200n), sectors(600n) - 1n]);
        await c.call('mkfs', ['f2fs', '/dev/sda1']);
        await c.call('f2fs_expand', ['/dev/sda1']);
        A.equal(await c.call('vfs_type', ['/dev/sda1']), 'f2fs');
        await c.call('mkfs', ['ntfs', '/dev/sda2']);
        A.equal(await c.call('vfs_type', ['/dev/sda2']), 'ntfs');
        A.equal(await c.call('ntfs_3g_probe', [true, '/dev/sda2']), 0);
        await c.call('ntfsresize_size', ['/dev/sda2', 150n * MiB]);
        await c.call('ntfsresize', ['/dev/sda2'], { size: 120n * MiB, force: true });
        await c.call('ntfsfix', ['/dev/sda2'], { clearbadsectors: true });
        const clone: Buffer[] = [];
        await c.call('ntfsclone_out', ['/dev/sda2', '-'], { metadataonly: true, force: true }, { fileOut: (b) => void clone.push(Buffer.from(b)) });
        const image = Buffer.concat(clone);
        A.ok(image.length > 0);
        await c.call('zero', ['/dev/sda2']);
        A.notEqual(await c.call('vfs_type', ['/dev/sda2']), 'ntfs');
        await c.call('ntfsclone_in', ['-', '/dev/sda2'], {}, { fileIn: (async function* () { yield image; })() });
        A.equal(await c.call('vfs_type', ['/dev/sda2']), 'ntfs');
        await c.call('mkfs', ['vfat', '/dev/sda1']);
        await c.call('syslinux', ['/dev/sda1']);
        await c.call('mount', ['/dev/sda1', '/']);
        A.equal(await c.call('is_file', ['/ldlinux.sys']), true);
        await c.call('umount_all');
        await c.call('mkfs', ['ext4', '/dev/sda1']);
        await c.call('mount', ['/dev/sda1', '/']);
        await c.call('extlinux', ['/']);
        A.equal(await c.call('is_file', ['/ldlinux.sys']), true);
        await c.call('umount_all');
      },
    },
    {
      actions: ['ldmtool_scan', 'ldmtool_scan_devices', 'ldmtool_create_all', 'ldmtool_remove_all', 'list_ldm_volumes', 'list_ldm_partitions'],
      async run(c) {
        // No Windows dynamic disks here: the scans and listings are empty.
        A.deepEqual(await c.call('ldmtool_scan'), []);
        A.deepEqual(await c.call('ldmtool_scan_devices', [['/dev/sda']]), []);
        await c.call('ldmtool_create_all');
        await c.call('ldmtool_remove_all');
        A.deepEqual(await c.call('list_ldm_volumes'), []);
        A.deepEqual(await c.call('list_ldm_partitions'), []);
      },
    },
    {
      actions: ['md_create', 'list_md_devices', 'md_detail', 'md_stat', 'md_stop'],
      async run(c) {
        await c.call('md_create', ['r1', ['/dev/sdd', '/dev/sde']], { level: 'raid1', nrdevices: 2 });
        A.deepEqual(await c.call('list_md_devices'), ['/dev/md127']);
        const d = await c.call('md_detail', ['/dev/md127']);
        A.equal(d.level, 'raid1');
        A.match(d.name, /r1$/);
        const st = await c.call('md_stat', ['/dev/md127']);
        A.deepEqual(st.map((x: { mdstat_device: string }) => x.mdstat_device).sort(), ['/dev/sdd', '/dev/sde']);
        await c.call('md_stop', ['/dev/md127']);
        A.deepEqual(await c.call('list_md_devices'), []);
        await c.call('zero_device', ['/dev/sdd']);
        await c.call('zero_device', ['/dev/sde']);
      },
    },
  ],
};
