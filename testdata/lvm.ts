// The `lvm` guest: the cached Debian root (debian-rootfs.ts) on LVM, built by
// driving the appliance through a guestsh Session: nothing is mounted on the
// host. sfdisk writes the MBR into the image file on the host (fixed disk
// label id); everything else (PV, VG, LVs, ext4, the files) is done inside
// the appliance with libguestfs calls, and `shutdown` merges it into the image.
//
// Outputs, in one cache directory named by the hash of this file and the root
// tarball's name:
//   lvm.img         raw, sparse, MBR: p1 /boot ext4 "boot", p2 LVM PV (type 8e)
//                   VG guestvg: LV root (/ ext4 "root"), LV home (/home ext4 "home")
//   lvm.qcow2       the same disk converted by qemu-img
//   lvm.truth.json  what tests may expect to find (LvmTruth)
//
// Determinism: the partition table, the PV, VG and LV UUIDs, the LV sizes,
// the filesystem UUIDs and labels and every file's content, owner, mode and
// mtime are fixed. libguestfs has no call that sets LVM UUIDs (pvchange_uuid,
// vgchange_uuid pick random ones), so after pvcreate/vgcreate/lvcreate the
// builder rewrites them with LVM's own restore path (vgcfgbackup, edit the ids,
// pvcreate --uuid --restorefile, vgcfgrestore) run through the `debug sh`
// call. Not fixed, so the image bytes differ between builds: LVM metadata's
// creation_time, ext4's directory hash seeds and mkfs/mount times, inode
// ctimes and the inode order tar happens to produce.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from '../src/index.js';
import { BuildError, buildOnce, cacheKey, makeTempDir, publish, removeTree, run, step } from './build-support.js';
import { GUEST_EPOCH, debianRootfsTarball, ensureDebianRootfs } from './debian-rootfs.js';

const MiB = 1024 * 1024;
const SECTOR_BYTES = 512;
const DISK_BYTES = 1024 * MiB;
const DISK_LABEL_ID = '0x6775e57b';
const BOOT_START_SECTOR = MiB / SECTOR_BYTES;
const BOOT_SECTORS = (64 * MiB) / SECTOR_BYTES;
const PV_START_SECTOR = BOOT_START_SECTOR + BOOT_SECTORS;

const HOSTNAME = 'guestsh-lvm';
const MARKER = { path: '/etc/guestsh-lvm.txt', content: 'guestsh test guest: Debian bookworm on LVM built by testdata/lvm.ts' };
const HOME_MARKER = { path: '/home/guestsh-home.txt', content: 'this file lives on /dev/guestvg/home' };

/** One partition of a guest's MBR. */
export interface TruthPartition {
  number: number;
  startSector: number;
  sizeSectors: number;
  /** MBR type byte in sfdisk's hex notation: "83" Linux, "8e" Linux LVM. */
  type: string;
  bootable: boolean;
}

/** An ext4 filesystem the builder made, and where the guest's fstab mounts it. */
export interface TruthFilesystem {
  /** Device as the appliance names it: /dev/sda1, /dev/guestvg/root, /dev/mapper/… */
  device: string;
  type: 'ext4';
  uuid: string;
  label: string;
  mountpoint: string;
}

/** The Debian on LVM or LUKS: what the tests may expect inspection and the LVM/LUKS calls to report. */
export interface LayeredDebianTruth {
  hostname: string;
  osRelease: { ID: string; VERSION_ID: string; PRETTY_NAME: string };
  debianVersion: string;
  /** Files the builder wrote, with their exact content. */
  markers: { path: string; content: string }[];
  disk: { sizeBytes: number; sectorSize: number; partitionTable: 'dos'; labelId: string };
  partitions: TruthPartition[];
  filesystems: TruthFilesystem[];
  /** The guest's /etc/fstab, as written. */
  fstab: string;
}

export interface LvmTruth extends LayeredDebianTruth {
  lvm: {
    /** UUIDs as LVM prints them (with dashes); libguestfs' *_uuid calls and lvm structs return them without. */
    pv: { device: string; uuid: string };
    vg: { name: string; uuid: string; extentBytes: number };
    lvs: { name: string; uuid: string; sizeBytes: number; device: string }[];
  };
}

export interface GuestImages {
  raw: string;
  qcow2: string;
  truth: string;
}

const PV_DEVICE = '/dev/sda2';
const VG = { name: 'guestvg', uuid: 'gstshV-G000-lvm0-test-0000-0000-000001' };
const PV_UUID = 'gstshP-V000-lvm0-test-0000-0000-000001';
const EXTENT_BYTES = 4 * MiB; // vgcreate's default
const LVS = [
  { name: 'root', uuid: 'gstshL-V000-lvm0-test-0000-root-000001', sizeMiB: 640 },
  { name: 'home', uuid: 'gstshL-V000-lvm0-test-0000-home-000002', sizeMiB: 128 },
];

const FILESYSTEMS: TruthFilesystem[] = [
  { device: '/dev/guestvg/root', type: 'ext4', uuid: '6775e57b-2007-4f5e-8000-000000000002', label: 'root', mountpoint: '/' },
  { device: '/dev/sda1', type: 'ext4', uuid: '6775e57b-b007-4f5e-8000-000000000001', label: 'boot', mountpoint: '/boot' },
  { device: '/dev/guestvg/home', type: 'ext4', uuid: '6775e57b-4007-4f5e-8000-000000000003', label: 'home', mountpoint: '/home' },
];

const PARTITIONS: TruthPartition[] = [
  { number: 1, startSector: BOOT_START_SECTOR, sizeSectors: BOOT_SECTORS, type: '83', bootable: true },
  { number: 2, startSector: PV_START_SECTOR, sizeSectors: DISK_BYTES / SECTOR_BYTES - PV_START_SECTOR, type: '8e', bootable: false },
];

export async function ensureLvmImages(cacheDir: string): Promise<GuestImages> {
  const rootfsName = path.basename(await debianRootfsTarball(cacheDir));
  const key = cacheKey([fileURLToPath(import.meta.url)], { rootfs: rootfsName });
  return buildLayeredGuest(cacheDir, 'lvm', key, async (rootTar, work, images) => {
    step(`lvm: creating ${DISK_BYTES / MiB} MiB sparse raw disk with an MBR (boot + LVM PV)`);
    createPartitionedDisk(images.raw, DISK_BYTES);
    await run('sfdisk', ['--quiet', images.raw], { input: sfdiskScript(DISK_LABEL_ID, PARTITIONS) });

    const truthBase = await debianFacts(rootTar);
    await withBuildSession(images.raw, 'lvm', async (s) => {
      step(`lvm: pvcreate ${PV_DEVICE}, vgcreate ${VG.name}, lvcreate ${LVS.map((lv) => `${lv.name} ${lv.sizeMiB} MiB`).join(', ')}`);
      await s.call('pvcreate', [PV_DEVICE]);
      await s.call('vgcreate', [VG.name, [PV_DEVICE]]);
      for (const lv of LVS) await s.call('lvcreate', [lv.name, VG.name, lv.sizeMiB]);
      step('lvm: fixing the PV, VG and LV UUIDs (vgcfgbackup, pvcreate --uuid --restorefile, vgcfgrestore)');
      await fixLvmUuids(s);
      await makeFilesystems(s, 'lvm');
      await fillDebianRoot(s, 'lvm', rootTar, FILESYSTEMS, {
        hostname: HOSTNAME,
        fstab: fstabFor(FILESYSTEMS),
        extraFiles: [MARKER, HOME_MARKER],
      });
    });

    const truth: LvmTruth = {
      ...truthBase,
      hostname: HOSTNAME,
      markers: [MARKER, HOME_MARKER],
      disk: { sizeBytes: DISK_BYTES, sectorSize: SECTOR_BYTES, partitionTable: 'dos', labelId: DISK_LABEL_ID },
      partitions: PARTITIONS,
      filesystems: FILESYSTEMS,
      fstab: fstabFor(FILESYSTEMS),
      lvm: {
        pv: { device: PV_DEVICE, uuid: PV_UUID },
        vg: { name: VG.name, uuid: VG.uuid, extentBytes: EXTENT_BYTES },
        lvs: LVS.map((lv) => ({ name: lv.name, uuid: lv.uuid, sizeBytes: lv.sizeMiB * MiB, device: `/dev/${VG.name}/${lv.name}` })),
      },
    };
    return truth;
  });
}

async function makeFilesystems(s: Session, guest: string, filesystems = FILESYSTEMS): Promise<void> {
  for (const f of filesystems) {
    step(`${guest}: mke2fs ext4 "${f.label}" on ${f.device} (UUID ${f.uuid})`);
    await s.call('mke2fs', [f.device], { fstype: 'ext4', label: f.label, uuid: f.uuid });
  }
}

/**
 * Give the PV, VG and LVs the fixed UUIDs: LVM's documented recovery path
 * (back up the metadata, rewrite the PV label with a chosen UUID from it,
 * restore it) with the ids edited in between. Done before any data is written.
 */
async function fixLvmUuids(s: Session): Promise<void> {
  const backupFile = '/tmp/guestvg.vg';
  await sh(s, `lvm vgcfgbackup -f ${backupFile} ${VG.name}`);
  let metadata = await sh(s, `cat ${backupFile}`);
  const idAfter = (blockName: string): string => {
    const match = new RegExp(`\\n\\t*${blockName} \\{\\n\\t*id = "([^"]+)"`).exec(metadata);
    if (!match) throw new BuildError(`LVM metadata backup has no id for "${blockName}"`);
    return match[1]!;
  };
  const replacements: [string, string][] = [
    [idAfter(VG.name), VG.uuid],
    [idAfter('pv0'), PV_UUID],
    ...LVS.map((lv): [string, string] => [idAfter(lv.name), lv.uuid]),
  ];
  for (const [from, to] of replacements) metadata = metadata.split(`"${from}"`).join(`"${to}"`);
  const edited = '/tmp/guestvg-fixed.vg';
  await sh(
    s,
    [
      `echo ${Buffer.from(metadata).toString('base64')} | base64 -d > ${edited}`,
      `lvm vgchange -an ${VG.name}`,
      `lvm pvcreate -ff -y --uuid ${PV_UUID} --restorefile ${edited} ${PV_DEVICE}`,
      `lvm vgcfgrestore -f ${edited} ${VG.name}`,
      `lvm vgchange -ay ${VG.name}`,
    ].join(' && '),
  );
  await s.call('lvm_clear_filter', []);
  const vgUuid = String(await s.call('vguuid', [VG.name]));
  if (vgUuid.replaceAll('-', '') !== VG.uuid.replaceAll('-', '')) throw new BuildError(`vgcfgrestore did not set the VG UUID (got ${vgUuid})`);
}

// --- shared with luks.ts --------------------------------------------------

/** Run a shell command inside the appliance (libguestfs' `debug sh`); rejects if it exits non-zero. */
export async function sh(s: Session, command: string): Promise<string> {
  return String(await s.call('debug', ['sh', [command]]));
}

export function createPartitionedDisk(image: string, sizeBytes: number): void {
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeBytes);
}

export function sfdiskScript(labelId: string, partitions: TruthPartition[]): string {
  const lines = ['label: dos', `label-id: ${labelId}`, 'unit: sectors', `sector-size: ${SECTOR_BYTES}`, ''];
  for (const p of partitions) {
    lines.push(`start=${p.startSector}, size=${p.sizeSectors}, type=${p.type}${p.bootable ? ', bootable' : ''}`);
  }
  return lines.join('\n') + '\n';
}

export function fstabFor(filesystems: TruthFilesystem[], rootSpec?: string): string {
  const pass = (f: TruthFilesystem) => (f.mountpoint === '/' ? 1 : 2);
  const options = (f: TruthFilesystem) => (f.mountpoint === '/' ? 'errors=remount-ro' : 'defaults');
  // Partitions by UUID, LVs by their /dev/VG/LV path, the root as the caller says.
  const spec = (f: TruthFilesystem) =>
    f.mountpoint === '/' && rootSpec ? rootSpec : f.device.startsWith('/dev/sd') ? `UUID=${f.uuid}` : f.device;
  return (
    '# <file system> <mount point> <type> <options> <dump> <pass>\n' +
    filesystems.map((f) => `${spec(f)}\t${f.mountpoint}\text4\t${options(f)}\t0\t${pass(f)}`).join('\n') +
    '\n'
  );
}

/** Facts from the Debian root tarball itself (read by tar on the host, nothing extracted to disk). */
export async function debianFacts(rootTar: string): Promise<Pick<LayeredDebianTruth, 'osRelease' | 'debianVersion'>> {
  const member = (name: string) => run('tar', ['--extract', '--to-stdout', `--file=${rootTar}`, name]);
  const fields: Record<string, string> = {};
  for (const line of (await member('./usr/lib/os-release')).split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match) fields[match[1]!] = match[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  const required = (field: string) => {
    const value = fields[field];
    if (value === undefined) throw new BuildError(`the guest's /usr/lib/os-release has no ${field}`);
    return value;
  };
  return {
    osRelease: { ID: required('ID'), VERSION_ID: required('VERSION_ID'), PRETTY_NAME: required('PRETTY_NAME') },
    debianVersion: (await member('./etc/debian_version')).trim(),
  };
}

/**
 * Mount the filesystems as the guest's fstab will (shortest mount point
 * first), unpack the root tarball into them, write hostname, hosts, fstab and
 * the extra files with the guest epoch as mtime, then unmount.
 */
export async function fillDebianRoot(
  s: Session,
  guest: string,
  rootTar: string,
  filesystems: TruthFilesystem[],
  files: { hostname: string; fstab: string; extraFiles: { path: string; content: string }[] },
): Promise<void> {
  const byDepth = [...filesystems].sort((a, b) => a.mountpoint.length - b.mountpoint.length);
  for (const f of byDepth) {
    if (f.mountpoint !== '/') await s.call('mkdir_p', [f.mountpoint]);
    await s.call('mount', [f.device, f.mountpoint]);
  }
  step(`${guest}: tar-in the Debian root (${Math.round(fs.statSync(rootTar).size / MiB)} MiB plain tar) into ${byDepth.map((f) => f.mountpoint).join(' ')}`);
  await s.call('tar_in', [rootTar, '/'], { xattrs: true });
  step(`${guest}: writing hostname, hosts, fstab and marker files`);
  const written: { path: string; content: string }[] = [
    { path: '/etc/hostname', content: `${files.hostname}\n` },
    {
      path: '/etc/hosts',
      content: `127.0.0.1\tlocalhost\n127.0.1.1\t${files.hostname}\n\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n`,
    },
    { path: '/etc/fstab', content: files.fstab },
    ...files.extraFiles.map((f) => ({ path: f.path, content: `${f.content}\n` })),
  ];
  for (const file of written) {
    await s.call('write', [file.path, Buffer.from(file.content)]);
    await s.call('chown', [0, 0, file.path]);
    await s.call('chmod', [0o644, file.path]);
    await s.call('utimens', [file.path, GUEST_EPOCH, 0, GUEST_EPOCH, 0]);
  }
  for (const f of byDepth) await s.call('utimens', [f.mountpoint, GUEST_EPOCH, 0, GUEST_EPOCH, 0]);
  await s.call('sync', []);
  await s.call('umount_all', []);
}

/** A session on one read-write image; `body`'s changes are merged into the image only if it succeeds. */
export async function withBuildSession(image: string, guest: string, body: (s: Session) => Promise<void>): Promise<void> {
  step(`${guest}: launching the appliance`);
  const s = new Session();
  try {
    await s.addDrive(image, { format: 'raw' });
    await s.launch();
    await body(s);
    step(`${guest}: shutting the appliance down and merging the changes into the image`);
    await s.shutdown();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new BuildError(`${guest}: appliance step failed: ${message.split('\n')[0]}`);
  } finally {
    await s.close();
  }
}

/**
 * The cache protocol of debian.ts for a guest made from the Debian root:
 * decompress the tarball to plain tar (the appliance's tar_in knows no zstd),
 * build into a temp dir, convert to qcow2, write the truth, rename into place.
 */
export async function buildLayeredGuest<T>(
  cacheDir: string,
  name: string,
  key: string,
  build: (rootTar: string, work: string, images: GuestImages) => Promise<T>,
): Promise<GuestImages> {
  const outputDir = path.join(cacheDir, `${name}-${key}`);
  await buildOnce(outputDir, async () => {
    const rootfsTarball = await ensureDebianRootfs(cacheDir);
    const work = makeTempDir(cacheDir, name);
    try {
      const staged = path.join(work, 'out');
      fs.mkdirSync(staged);
      const rootTar = path.join(work, 'root.tar');
      step(`${name}: decompressing the Debian root tarball for tar_in`);
      await run('zstd', ['--quiet', '--decompress', '--force', '-o', rootTar, rootfsTarball]);
      const images = imagesIn(staged, name);
      const truth = await build(rootTar, work, images);
      step(`${name}: converting to qcow2`);
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', images.raw, images.qcow2]);
      fs.writeFileSync(images.truth, JSON.stringify(truth, null, 2) + '\n');
      await publish(staged, outputDir);
    } finally {
      await removeTree(work);
    }
  });
  return imagesIn(outputDir, name);
}

function imagesIn(dir: string, name: string): GuestImages {
  return { raw: path.join(dir, `${name}.img`), qcow2: path.join(dir, `${name}.qcow2`), truth: path.join(dir, `${name}.truth.json`) };
}
