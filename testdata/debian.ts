// Step 2 of the `debian` guest: from the cached root tarball (debian-rootfs.ts)
// to a partitioned disk image, without ever mounting it: sfdisk writes the
// MBR into the image file, `mke2fs -d` copies a directory straight into each
// partition's byte range, debugfs edits inodes in place.
//
// Outputs, in one cache directory named by the hash of this file, mke2fs.conf
// and the root tarball's key:
//   debian.img         raw, sparse, MBR: p1 /boot ext4 "boot", p2 / ext4 "root"
//   debian.qcow2       the same disk converted by qemu-img
//   debian.truth.json  what tests may expect to find (DebianTruth)
//
// The steps are shared with other guests made the same way from another root
// flavour (bootable.ts): each is an ImageProfile, the `debian` one is below.
//
// Determinism: from the same root tarball, on the same build filesystem, the
// raw image and the qcow2 are byte-identical (fixed UUIDs, hash seeds, disk
// label id, E2FSPROGS_FAKE_TIME, mtimes clamped, atime/ctime reset with
// debugfs). mke2fs 1.47.0 copies directories in readdir order, so on another
// host filesystem inode numbers, and so bytes, may differ; the files and
// their metadata do not.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError, buildOnce, cacheKey, makeTempDir, publish, removeTree, run, runWithOutput, step, walkTree } from './build-support.js';
import {
  GUEST_EPOCH,
  GUEST_EPOCH_DAY,
  SERVER_ROOTFS,
  debianRootfsTarball,
  ensureDebianRootfs,
  type RootfsFlavour,
} from './debian-rootfs.js';

export const MiB = 1024 * 1024;
export const SECTOR_BYTES = 512;
const DISK_BYTES = 1024 * MiB;
const LINUX_PARTITION_TYPE = '83';
const MKE2FS_CONFIG = fileURLToPath(new URL('./mke2fs.conf', import.meta.url));

export interface PlannedFilesystem {
  label: string;
  uuid: string;
  /** Seed of ext4's directory-index hash; random unless fixed. */
  hashSeed: string;
  mountpoint: string;
  fstabOptions: string;
  fsckPass: number;
}

export interface PlannedPartition {
  number: number;
  startSector: number;
  sizeSectors: number;
  bootable: boolean;
  filesystem: PlannedFilesystem;
}

/**
 * The MBR layout of these guests: p1 /boot ext4 "boot" (bootable flag),
 * p2 / ext4 "root" filling the rest. `id` is the guest's tag in the fixed
 * UUIDs: "6775e57a" (`debian`) keeps the values the guest always had.
 */
export function bootAndRootPartitions(diskBytes: number, bootBytes: number, id: string): PlannedPartition[] {
  const bootStartSector = MiB / SECTOR_BYTES; // 1 MiB alignment, as fdisk does
  const bootSectors = bootBytes / SECTOR_BYTES;
  const rootStartSector = bootStartSector + bootSectors;
  return [
    {
      number: 1,
      startSector: bootStartSector,
      sizeSectors: bootSectors,
      bootable: true,
      filesystem: {
        label: 'boot',
        uuid: `${id}-b007-4f5e-8000-000000000001`,
        hashSeed: `${id}-b007-4f5e-8000-0000000000a1`,
        mountpoint: '/boot',
        fstabOptions: 'defaults',
        fsckPass: 2,
      },
    },
    {
      number: 2,
      startSector: rootStartSector,
      sizeSectors: diskBytes / SECTOR_BYTES - rootStartSector,
      bootable: false,
      filesystem: {
        label: 'root',
        uuid: `${id}-2007-4f5e-8000-000000000002`,
        hashSeed: `${id}-2007-4f5e-8000-0000000000a2`,
        mountpoint: '/',
        fstabOptions: 'errors=remount-ro',
        fsckPass: 1,
      },
    },
  ];
}

export interface GuestUser {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
  /** Supplementary groups, which must already exist in the guest. */
  groups: string[];
}

const DEMO_USER: GuestUser = {
  name: 'demo',
  uid: 1000,
  gid: 1000,
  gecos: 'guestsh demo user,,,',
  home: '/home/demo',
  shell: '/bin/bash',
  groups: ['sudo'],
};
// crypt(3) SHA-512 of the password "demo" with a fixed salt
// (`openssl passwd -6 -salt guestshdemo demo`), so the guest is reproducible.
const DEMO_PASSWORD_HASH =
  '$6$guestshdemo$oaXo68k659Geny817Ij/5.f/it1ckrbbnmiYR38kz85k4HjSeI4.SOJICeff21pOU/eb37sj.e5S4YnbSGMDi/';

/** One guest made by these steps: its root flavour, disk layout and the edits made to the root. */
export interface ImageProfile {
  /** Names the cache directory and the output files (<name>.img, <name>.qcow2, <name>.truth.json). */
  name: string;
  /** Builder files besides this one and mke2fs.conf whose content is part of the cache key. */
  keyFiles: string[];
  rootfs: RootfsFlavour;
  hostname: string;
  marker: { path: string; content: string };
  users: { user: GuestUser; passwordHash: string }[];
  diskBytes: number;
  labelId: string;
  partitions: PlannedPartition[];
  /**
   * After the partitions are written: extra outputs made from the guest's
   * /boot content (a host directory) into the output directory, and extra
   * truth fields, merged into the truth file.
   */
  finish?(bootContent: string, outputDir: string): Promise<Record<string, unknown>>;
}

const DEBIAN_PROFILE: ImageProfile = {
  name: 'debian',
  keyFiles: [],
  rootfs: SERVER_ROOTFS,
  hostname: 'guestsh-demo',
  marker: { path: '/etc/guestsh-demo.txt', content: 'guestsh test guest: Debian bookworm built by testdata/debian.ts' },
  users: [{ user: DEMO_USER, passwordHash: DEMO_PASSWORD_HASH }],
  diskBytes: DISK_BYTES,
  labelId: '0x6775e57a',
  partitions: bootAndRootPartitions(DISK_BYTES, 64 * MiB, '6775e57a'),
};

/** What tests may rely on finding in the `debian` guest; written beside the image. */
export interface DebianTruth {
  hostname: string;
  osRelease: { ID: string; VERSION_ID: string; PRETTY_NAME: string };
  /** Content of /etc/debian_version, e.g. "12.11". */
  debianVersion: string;
  marker: { path: string; content: string };
  users: GuestUser[];
  disk: { sizeBytes: number; sectorSize: number; partitionTable: 'dos'; labelId: string };
  partitions: {
    number: number;
    startSector: number;
    sizeSectors: number;
    type: string;
    bootable: boolean;
    filesystem: { type: 'ext4'; uuid: string; label: string; mountpoint: string };
  }[];
  /** Installed packages ("install ok installed" in /var/lib/dpkg/status), name to version. */
  packages: Record<string, string>;
}

export interface DebianImages {
  raw: string;
  qcow2: string;
  truth: string;
}

export async function ensureDebianImages(cacheDir: string): Promise<DebianImages> {
  return (await ensureProfileImages(cacheDir, DEBIAN_PROFILE)).images;
}

/** A profile's images, built first if the cache lacks them; `dir` is their cache directory. */
export async function ensureProfileImages(cacheDir: string, profile: ImageProfile): Promise<{ images: DebianImages; dir: string }> {
  // Keyed by the root tarball's name, not its presence: the tarball may be
  // deleted to save space once the images exist.
  const rootfsName = path.basename(await debianRootfsTarball(cacheDir, profile.rootfs));
  const key = cacheKey([fileURLToPath(import.meta.url), MKE2FS_CONFIG, ...profile.keyFiles], { rootfs: rootfsName });
  const outputDir = path.join(cacheDir, `${profile.name}-${key}`);
  await buildOnce(outputDir, async () => {
    const rootfsTarball = await ensureDebianRootfs(cacheDir, profile.rootfs);
    const work = makeTempDir(cacheDir, profile.name);
    try {
      const staged = path.join(work, 'out');
      fs.mkdirSync(staged);
      await buildImages(profile, rootfsTarball, work, staged);
      await publish(staged, outputDir);
    } finally {
      await removeTree(work);
    }
  });
  return { images: imagesIn(outputDir, profile.name), dir: outputDir };
}

function imagesIn(dir: string, name: string): DebianImages {
  return {
    raw: path.join(dir, `${name}.img`),
    qcow2: path.join(dir, `${name}.qcow2`),
    truth: path.join(dir, `${name}.truth.json`),
  };
}

async function buildImages(profile: ImageProfile, rootfsTarball: string, work: string, outputDir: string): Promise<void> {
  const images = imagesIn(outputDir, profile.name);
  const { name } = profile;
  const root = path.join(work, 'root');
  const bootContent = path.join(work, 'boot');
  fs.mkdirSync(root);
  step(`${name}: unpacking the root tarball`);
  await run('tar', [
    '--extract', '--zstd', `--file=${rootfsTarball}`, `--directory=${root}`,
    '--numeric-owner', '--same-owner', '--same-permissions', '--xattrs', '--xattrs-include=*',
  ]);

  const users = profile.users.map(({ user }) => ` and user ${user.name}`).join('');
  step(`${name}: writing hostname, fstab, ${profile.marker.path}${users}`);
  customize(root, profile);
  // /boot's content goes into partition 1; the root filesystem keeps an empty mount point.
  fs.renameSync(path.join(root, 'boot'), bootContent);
  fs.mkdirSync(path.join(root, 'boot'));
  fs.chmodSync(path.join(root, 'boot'), 0o755);
  clampMtimes(root);
  clampMtimes(bootContent);
  const truth: DebianTruth = collectTruth(root, profile);

  step(`${name}: creating ${profile.diskBytes / MiB} MiB sparse raw disk with an MBR`);
  fs.writeFileSync(images.raw, '');
  fs.truncateSync(images.raw, profile.diskBytes);
  await run('sfdisk', ['--quiet', images.raw], { input: sfdiskScript(profile) });

  for (const partition of profile.partitions) {
    const { filesystem } = partition;
    const source = filesystem.mountpoint === '/boot' ? bootContent : root;
    step(`${name}: mke2fs ext4 "${filesystem.label}" into partition ${partition.number} from the guest's ${filesystem.mountpoint}`);
    await makeFilesystem(images.raw, partition, source);
    step(`${name}: resetting access and change times in "${filesystem.label}", then e2fsck`);
    await resetInodeTimes(images.raw, partition);
    await run('e2fsck', ['-fn', deviceAt(images.raw, partition)]);
  }

  step(`${name}: converting to qcow2`);
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', images.raw, images.qcow2]);
  if (profile.finish) Object.assign(truth, await profile.finish(bootContent, outputDir));
  fs.writeFileSync(images.truth, JSON.stringify(truth, null, 2) + '\n');
}

/** e2fsprogs' name for "this file from this byte on", so no loop device is needed. */
function deviceAt(image: string, partition: { startSector: number }): string {
  return `${image}?offset=${partition.startSector * SECTOR_BYTES}`;
}

function sfdiskScript(profile: ImageProfile): string {
  const lines = ['label: dos', `label-id: ${profile.labelId}`, 'unit: sectors', `sector-size: ${SECTOR_BYTES}`, ''];
  for (const p of profile.partitions) {
    lines.push(`start=${p.startSector}, size=${p.sizeSectors}, type=${LINUX_PARTITION_TYPE}${p.bootable ? ', bootable' : ''}`);
  }
  return lines.join('\n') + '\n';
}

/** Environment for e2fsprogs: our mke2fs.conf, and the guest epoch instead of "now". */
const E2FS_ENV = { MKE2FS_CONFIG, E2FSPROGS_FAKE_TIME: String(GUEST_EPOCH) };

async function makeFilesystem(image: string, partition: PlannedPartition, sourceDir: string): Promise<void> {
  const { filesystem } = partition;
  const extendedOptions = [
    `offset=${partition.startSector * SECTOR_BYTES}`,
    `hash_seed=${filesystem.hashSeed}`,
    'root_owner=0:0',
    // The image was just created sparse: nothing to discard or zero, and skipping
    // it keeps the file sparse.
    'nodiscard',
    'assume_storage_prezeroed=1',
  ];
  // Without -b, mke2fs reads the size argument as KiB; it counts from the offset.
  const sizeKiB = (partition.sizeSectors * SECTOR_BYTES) / 1024;
  await run(
    'mke2fs',
    ['-q', '-F', '-t', 'ext4', '-T', 'default', '-U', filesystem.uuid, '-L', filesystem.label,
      '-E', extendedOptions.join(','), '-d', sourceDir, image, String(sizeKiB)],
    { env: E2FS_ENV },
  );
}

/**
 * `mke2fs -d` copies each file's atime and ctime from the build tree, where
 * they are "now" (ctime cannot be set from user space). Reset both to the
 * guest epoch on every inode in use; mtimes were already clamped.
 */
async function resetInodeTimes(image: string, partition: PlannedPartition): Promise<void> {
  const device = deviceAt(image, partition);
  const layout = await run('dumpe2fs', [device]);
  const commands = inodesInUse(layout).flatMap((inode) => [
    `set_inode_field <${inode}> atime @${GUEST_EPOCH}`,
    `set_inode_field <${inode}> ctime @${GUEST_EPOCH}`,
  ]);
  const { stderr } = await runWithOutput('debugfs', ['-w', '-f', '-', device], {
    input: commands.join('\n') + '\n',
    env: E2FS_ENV,
  });
  const complaint = stderr.split('\n').find((line) => line.trim() && !/^debugfs \d/.test(line));
  if (complaint) throw new BuildError(`debugfs could not reset inode times in ${device}: ${complaint.trim()}`);
}

/** Inodes in use, from dumpe2fs's per-group "Free inodes:" ranges: the root directory and every ordinary inode. */
function inodesInUse(dumpe2fsOutput: string): number[] {
  const headerNumber = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+)$`, 'm').exec(dumpe2fsOutput);
    if (!match) throw new BuildError(`dumpe2fs output has no "${field}" line`);
    return Number(match[1]);
  };
  const inodeCount = headerNumber('Inode count');
  const firstOrdinaryInode = headerNumber('First inode');
  const free = new Uint8Array(inodeCount + 1);
  for (const [, ranges] of dumpe2fsOutput.matchAll(/^\s+Free inodes: (.*)$/gm)) {
    for (const range of ranges!.split(',').map((r) => r.trim()).filter(Boolean)) {
      const [first, last = first] = range.split('-').map(Number);
      free.fill(1, first, last! + 1);
    }
  }
  const ROOT_DIRECTORY_INODE = 2;
  const inUse = [ROOT_DIRECTORY_INODE];
  for (let inode = firstOrdinaryInode; inode <= inodeCount; inode++) if (!free[inode]) inUse.push(inode);
  return inUse;
}

/** Host path of `guestPath`, following symlinks as the guest would: absolute targets stay inside `root`. */
function resolveInGuest(root: string, guestPath: string): string {
  const pending = guestPath.split('/').filter(Boolean);
  let resolved: string[] = [];
  let symlinksFollowed = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const hostPath = path.join(root, ...resolved, part);
    if (fs.lstatSync(hostPath, { throwIfNoEntry: false })?.isSymbolicLink()) {
      if (++symlinksFollowed > 40) throw new BuildError(`symlink loop at ${guestPath} in the guest`);
      const target = fs.readlinkSync(hostPath);
      if (target.startsWith('/')) resolved = [];
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

function readGuestFile(root: string, guestPath: string): string {
  return fs.readFileSync(resolveInGuest(root, guestPath), 'utf8');
}

/**
 * Create or replace a file as root:root 0644. Replaced rather than rewritten
 * because debootstrap copies some (like /etc/hostname) from the build host,
 * mode included. chmod after writing, as creation modes are cut by the umask.
 */
function writeGuestFile(root: string, guestPath: string, content: string): void {
  const file = resolveInGuest(root, guestPath);
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, content);
  fs.chownSync(file, 0, 0);
  fs.chmodSync(file, 0o644);
}

/** Rewrite a file in place, keeping its owner and mode (e.g. /etc/shadow's root:shadow 0640). */
function editGuestFile(root: string, guestPath: string, edit: (content: string) => string): void {
  const file = resolveInGuest(root, guestPath);
  fs.writeFileSync(file, edit(fs.readFileSync(file, 'utf8')));
}

function appendLine(content: string, line: string): string {
  return (content === '' || content.endsWith('\n') ? content : content + '\n') + line + '\n';
}

function customize(root: string, profile: ImageProfile): void {
  const HOSTNAME = profile.hostname;
  writeGuestFile(root, '/etc/hostname', `${HOSTNAME}\n`);
  writeGuestFile(
    root,
    '/etc/hosts',
    [
      '127.0.0.1\tlocalhost',
      `127.0.1.1\t${HOSTNAME}`,
      '',
      '::1\t\tlocalhost ip6-localhost ip6-loopback',
      'ff02::1\t\tip6-allnodes',
      'ff02::2\t\tip6-allrouters',
      '',
    ].join('\n'),
  );
  const byMountOrder = [...profile.partitions].sort((a, b) => a.filesystem.fsckPass - b.filesystem.fsckPass);
  writeGuestFile(
    root,
    '/etc/fstab',
    '# <file system> <mount point> <type> <options> <dump> <pass>\n' +
      byMountOrder
        .map(({ filesystem: f }) => `UUID=${f.uuid}\t${f.mountpoint}\text4\t${f.fstabOptions}\t0\t${f.fsckPass}`)
        .join('\n') +
      '\n',
  );
  writeGuestFile(root, profile.marker.path, `${profile.marker.content}\n`);
  for (const { user, passwordHash } of profile.users) addUser(root, user, passwordHash);
}

/** What useradd would do, done on the files so that nothing depends on the build day. */
function addUser(root: string, user: GuestUser, passwordHash: string): void {
  const passwdLine = `${user.name}:x:${user.uid}:${user.gid}:${user.gecos}:${user.home}:${user.shell}`;
  editGuestFile(root, '/etc/passwd', (content) => appendLine(content, passwdLine));
  editGuestFile(root, '/etc/shadow', (content) =>
    appendLine(content, `${user.name}:${passwordHash}:${GUEST_EPOCH_DAY}:0:99999:7:::`),
  );
  // Members are the last field of both group and gshadow lines.
  const withUserInGroups = (content: string) =>
    content
      .split('\n')
      .map((line) => {
        const fields = line.split(':');
        if (!user.groups.includes(fields[0]!)) return line;
        const members = fields.at(-1)!.split(',').filter(Boolean);
        fields[fields.length - 1] = [...members, user.name].join(',');
        return fields.join(':');
      })
      .join('\n');
  editGuestFile(root, '/etc/group', (content) => appendLine(withUserInGroups(content), `${user.name}:x:${user.gid}:`));
  editGuestFile(root, '/etc/gshadow', (content) => appendLine(withUserInGroups(content), `${user.name}:!::`));
  const home = resolveInGuest(root, user.home);
  fs.mkdirSync(home);
  fs.chownSync(home, user.uid, user.gid);
  fs.chmodSync(home, 0o700); // bookworm adduser's DIR_MODE
  const skel = resolveInGuest(root, '/etc/skel');
  for (const name of fs.readdirSync(skel)) {
    const copy = path.join(home, name);
    fs.copyFileSync(path.join(skel, name), copy);
    fs.chownSync(copy, user.uid, user.gid);
    fs.chmodSync(copy, fs.statSync(path.join(skel, name)).mode & 0o7777);
  }
}

/** No file newer than the guest epoch, whatever day the image is built (tar --clamp-mtime's rule). */
function clampMtimes(dir: string): void {
  const epochMs = GUEST_EPOCH * 1000;
  for (const entry of [dir, ...walkTree(dir)]) {
    if (fs.lstatSync(entry).mtimeMs > epochMs) fs.lutimesSync(entry, GUEST_EPOCH, GUEST_EPOCH);
  }
}

/** KEY=value lines of an os-release file, quotes removed. */
function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match) fields[match[1]!] = match[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return fields;
}

/** name → version of the packages dpkg considers installed. */
function installedPackages(dpkgStatus: string): Record<string, string> {
  const installed: [string, string][] = [];
  for (const stanza of dpkgStatus.split(/\n\n+/)) {
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(stanza)?.[1];
    const name = field('Package');
    const version = field('Version');
    if (name && version && field('Status') === 'install ok installed') installed.push([name, version]);
  }
  return Object.fromEntries(installed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function collectTruth(root: string, profile: ImageProfile): DebianTruth {
  const osRelease = parseOsRelease(readGuestFile(root, '/etc/os-release'));
  const required = (field: string) => {
    const value = osRelease[field];
    if (value === undefined) throw new BuildError(`the guest's /etc/os-release has no ${field}`);
    return value;
  };
  return {
    hostname: profile.hostname,
    osRelease: { ID: required('ID'), VERSION_ID: required('VERSION_ID'), PRETTY_NAME: required('PRETTY_NAME') },
    debianVersion: readGuestFile(root, '/etc/debian_version').trim(),
    marker: profile.marker,
    users: profile.users.map(({ user }) => user),
    disk: { sizeBytes: profile.diskBytes, sectorSize: SECTOR_BYTES, partitionTable: 'dos', labelId: profile.labelId },
    partitions: profile.partitions.map((p) => ({
      number: p.number,
      startSector: p.startSector,
      sizeSectors: p.sizeSectors,
      type: LINUX_PARTITION_TYPE,
      bootable: p.bootable,
      filesystem: { type: 'ext4', uuid: p.filesystem.uuid, label: p.filesystem.label, mountpoint: p.filesystem.mountpoint },
    })),
    packages: installedPackages(readGuestFile(root, '/var/lib/dpkg/status')),
  };
}
