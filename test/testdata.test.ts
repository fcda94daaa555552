// The test guests are what every other test trusts, so check them against
// the disk itself with independent readers (sfdisk, dumpe2fs, debugfs,
// qemu-img), never by mounting, and check the cache really is a cache.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, removeAbandonedTempDirs, removeTree } from '../testdata/build-support.js';
import { GUEST_EPOCH, ensureDebianRootfs } from '../testdata/debian-rootfs.js';
import {
  blankDisk,
  defaultCacheDir,
  ensureGuest,
  ensureImage,
  readTruth,
  type DebianImages,
  type DebianTruth,
} from '../testdata/index.js';
import { scaled } from './slowdown.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const COLD_BUILD_MS = 900_000; // debootstrap from the network, then the image
const IMAGE_BUILD_MS = 300_000;

const tool = (command: string, args: string[]) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });

function partitionDevice(images: DebianImages, truth: DebianTruth, number: number): string {
  const partition = truth.partitions.find((p) => p.number === number)!;
  return `${images.raw}?offset=${partition.startSector * truth.disk.sectorSize}`;
}

/** A file's content inside a partition, read by debugfs from the image file. */
function guestFile(device: string, guestPath: string): string {
  return tool('debugfs', ['-R', `cat ${guestPath}`, device]);
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

let images: DebianImages;
let truth: DebianTruth;
let rootDevice: string;

beforeAll(async () => {
  images = await ensureGuest('debian');
  truth = readTruth(images);
  const root = truth.partitions.find((p) => p.filesystem.mountpoint === '/')!;
  rootDevice = partitionDevice(images, truth, root.number);
}, COLD_BUILD_MS);

describe('debian test guest', () => {
  it('is a sparse raw image of the recorded size', () => {
    const info = JSON.parse(tool('qemu-img', ['info', '--output=json', images.raw]));
    expect(info.format).toBe('raw');
    expect(info['virtual-size']).toBe(truth.disk.sizeBytes);
    expect(fs.statSync(images.raw).blocks * 512).toBeLessThan(truth.disk.sizeBytes / 2);
  });

  it('has an MBR whose partitions match the truth file', () => {
    const table = JSON.parse(tool('sfdisk', ['--json', images.raw])).partitiontable;
    expect(table.label).toBe(truth.disk.partitionTable);
    expect(table.id).toBe(truth.disk.labelId);
    expect(table.sectorsize).toBe(truth.disk.sectorSize);
    const onDisk = table.partitions.map((p: Record<string, unknown>) => ({
      number: Number(/(\d+)$/.exec(String(p.node))![1]),
      startSector: p.start,
      sizeSectors: p.size,
      type: p.type,
      bootable: p.bootable === true,
    }));
    expect(onDisk).toEqual(truth.partitions.map(({ filesystem: _, ...partition }) => partition));
    const lastSector = Math.max(...onDisk.map((p: { startSector: number; sizeSectors: number }) => p.startSector + p.sizeSectors));
    expect(lastSector * truth.disk.sectorSize).toBeLessThanOrEqual(truth.disk.sizeBytes);
  });

  it('has in each partition a clean ext4 with the recorded UUID and label', () => {
    for (const partition of truth.partitions) {
      const device = partitionDevice(images, truth, partition.number);
      const superblock = tool('dumpe2fs', ['-h', device]);
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(superblock)?.[1]?.trim();
      expect(field('Filesystem UUID')).toBe(partition.filesystem.uuid);
      expect(field('Filesystem volume name')).toBe(partition.filesystem.label);
      expect(field('Filesystem features')).toContain('extent');
      // The filesystem fills its partition exactly: mke2fs got the size right despite the offset.
      expect(Number(field('Block count')) * Number(field('Block size'))).toBe(partition.sizeSectors * truth.disk.sectorSize);
      expect(() => tool('e2fsck', ['-fn', device])).not.toThrow();
    }
  });

  it('holds the recorded hostname, marker, os-release and user', () => {
    expect(guestFile(rootDevice, '/etc/hostname').trim()).toBe(truth.hostname);
    expect(guestFile(rootDevice, truth.marker.path)).toBe(`${truth.marker.content}\n`);
    // /etc/os-release is a symlink, and debugfs's cat does not follow a final symlink.
    const osRelease = guestFile(rootDevice, '/usr/lib/os-release');
    expect(osRelease).toMatch(new RegExp(`^ID=${truth.osRelease.ID}$`, 'm'));
    expect(osRelease).toMatch(new RegExp(`^VERSION_ID="${truth.osRelease.VERSION_ID}"$`, 'm'));
    expect(guestFile(rootDevice, '/etc/debian_version').trim()).toBe(truth.debianVersion);
    const passwd = guestFile(rootDevice, '/etc/passwd').split('\n');
    for (const user of truth.users) {
      expect(passwd).toContain(`${user.name}:x:${user.uid}:${user.gid}:${user.gecos}:${user.home}:${user.shell}`);
      const group = guestFile(rootDevice, '/etc/group').split('\n');
      for (const supplementary of user.groups) {
        expect(group.find((line) => line.startsWith(`${supplementary}:`))?.split(':')[3]?.split(',')).toContain(user.name);
      }
      const home = tool('debugfs', ['-R', `stat ${user.home}`, rootDevice]);
      expect(home).toMatch(new RegExp(`User:\\s+${user.uid}\\s+Group:\\s+${user.gid}`));
    }
  });

  it('mounts /boot and / by UUID in /etc/fstab', () => {
    const fstab = guestFile(rootDevice, '/etc/fstab')
      .split('\n')
      .filter((line) => line.trim() && !line.startsWith('#'))
      .map((line) => line.split(/\s+/));
    const mounted = Object.fromEntries(fstab.map(([spec, mountpoint]) => [mountpoint, spec]));
    expect(mounted).toEqual(
      Object.fromEntries(truth.partitions.map((p) => [p.filesystem.mountpoint, `UUID=${p.filesystem.uuid}`])),
    );
  });

  it('has exactly the recorded packages in its dpkg database', () => {
    const installed: Record<string, string> = {};
    for (const stanza of guestFile(rootDevice, '/var/lib/dpkg/status').split('\n\n')) {
      const fields = new Map<string, string>();
      for (const line of stanza.split('\n')) {
        const colon = line.indexOf(': ');
        if (colon > 0 && !line.startsWith(' ')) fields.set(line.slice(0, colon), line.slice(colon + 2));
      }
      const [name, version] = [fields.get('Package'), fields.get('Version')];
      if (fields.get('Status') === 'install ok installed' && name && version) installed[name] = version;
    }
    expect(installed).toEqual(truth.packages);
    for (const requested of ['openssh-server', 'sudo', 'cron']) expect(truth.packages).toHaveProperty(requested);
  });

  it('has access and change times reset to the guest epoch and no mtime after it', () => {
    for (const guestPath of ['/etc/hostname', '/usr/bin/bash', truth.users[0]!.home]) {
      const stat = tool('debugfs', ['-R', `stat ${guestPath}`, rootDevice]);
      const time = (name: string) => parseInt(new RegExp(`^\\s*${name}: 0x([0-9a-f]+)`, 'm').exec(stat)![1]!, 16);
      expect(time('atime')).toBe(GUEST_EPOCH);
      expect(time('ctime')).toBe(GUEST_EPOCH);
      expect(time('mtime')).toBeLessThanOrEqual(GUEST_EPOCH);
    }
  });

  it('has a qcow2 holding the same disk', () => {
    expect(JSON.parse(tool('qemu-img', ['info', '--output=json', images.qcow2])).format).toBe('qcow2');
    expect(() => tool('qemu-img', ['compare', images.raw, images.qcow2])).not.toThrow();
  });
});

describe('test guest cache', () => {
  it('serves a second request from the cache without touching the files', async () => {
    const rootfsTarball = await ensureDebianRootfs(defaultCacheDir());
    const outputs = [images.raw, images.qcow2, images.truth, rootfsTarball];
    const before = outputs.map((file) => fs.statSync(file).mtimeMs);
    expect(await ensureGuest('debian')).toEqual(images);
    expect(await ensureImage('debian')).toBe(images.raw);
    expect(outputs.map((file) => fs.statSync(file).mtimeMs)).toEqual(before);
    const leftovers = fs.readdirSync(defaultCacheDir()).filter((name) => name.startsWith('.tmp-') || name.endsWith('.lock'));
    expect(leftovers).toEqual([]);
  });

  it(
    'rebuilds byte-identical images from the cached root tarball',
    async () => {
      const rootfsTarball = await ensureDebianRootfs(defaultCacheDir());
      // Inside the cache so the tarball can be hard-linked and the build tree
      // is on the same filesystem as the original's (see debian.ts on readdir order).
      const otherCache = fs.mkdtempSync(path.join(defaultCacheDir(), 'test-rebuild-'));
      try {
        fs.linkSync(rootfsTarball, path.join(otherCache, path.basename(rootfsTarball)));
        const rebuilt = await ensureGuest('debian', { cacheDir: otherCache });
        expect(path.dirname(rebuilt.raw)).not.toBe(path.dirname(images.raw));
        // Only the linked tarball: debootstrap did not run again.
        expect(fs.readdirSync(otherCache).filter((name) => name.endsWith('.tar.zst'))).toEqual([path.basename(rootfsTarball)]);
        expect(sha256(rebuilt.raw)).toBe(sha256(images.raw));
        expect(sha256(rebuilt.qcow2)).toBe(sha256(images.qcow2));
        expect(readTruth(rebuilt)).toEqual(truth);
      } finally {
        fs.rmSync(otherCache, { recursive: true, force: true });
      }
    },
    IMAGE_BUILD_MS,
  );

  it('leaves neither output nor lock behind when a build fails', async () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'guestsh-buildonce-'));
    try {
      const output = path.join(scratch, 'output');
      await expect(
        buildOnce(output, async () => {
          throw new Error('builder failed');
        }),
      ).rejects.toThrow('builder failed');
      expect(fs.readdirSync(scratch)).toEqual([]);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('unmounts what a build left mounted before removing its tree', async () => {
    // What a debootstrap killed mid-way leaves: a mount inside the build tree.
    const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'guestsh-removetree-'));
    const mountPoint = path.join(tree, 'root', 'proc');
    fs.mkdirSync(mountPoint, { recursive: true });
    tool('mount', ['-t', 'tmpfs', 'guestsh-test', mountPoint]);
    fs.writeFileSync(path.join(mountPoint, 'file'), 'x');
    await removeTree(tree);
    expect(fs.existsSync(tree)).toBe(false);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(tree);
  });

  it('removes temp dirs of builders that died, and keeps those of live ones', async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'guestsh-abandoned-'));
    try {
      // A child that has exited gives a pid that is certainly not running.
      const deadPid = spawnSync('true').pid!;
      fs.mkdirSync(path.join(cache, `.tmp-${deadPid}-debian-x`));
      fs.mkdirSync(path.join(cache, `.tmp-${process.pid}-debian-y`));
      await removeAbandonedTempDirs(cache);
      expect(fs.readdirSync(cache)).toEqual([`.tmp-${process.pid}-debian-y`]);
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe('build.ts', () => {
  const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
  const build = (...names: string[]) =>
    spawnSync(tsx, ['testdata/build.ts', ...names], { cwd: REPO_ROOT, encoding: 'utf8' });

  it('prints the raw and qcow2 paths of a built guest, one per line', () => {
    const result = build('debian');
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual([images.raw, images.qcow2]);
  }, scaled(60_000));

  it('fails with one line naming an unknown guest', () => {
    const result = build('no-such-guest');
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringContaining('unknown test guest "no-such-guest"')]);
  }, scaled(60_000));
});

describe('blankDisk', () => {
  it.each(['raw', 'qcow2'] as const)('creates an empty %s disk of the requested size', async (format) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guestsh-blank-'));
    try {
      const disk = path.join(dir, `blank.${format}`);
      await blankDisk(disk, 64 * 1024 * 1024, format);
      const info = JSON.parse(tool('qemu-img', ['info', '--output=json', disk]));
      expect(info.format).toBe(format);
      expect(info['virtual-size']).toBe(64 * 1024 * 1024);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
