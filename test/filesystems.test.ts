// The filesystem matrix, measured: for every filesystem the appliance can
// carry, create it (in the guest, or on the host where only the host has a
// maker), write a tree, fsck it, read the tree back, and check what
// list-filesystems, vfs-type, vfs-label and vfs-uuid say. The README's table
// is this test's output: the test fails when they differ, and
// GUESTSH_UPDATE_README=1 writes the measured table into the README.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { isolatedTmpdir } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
const README = join(import.meta.dirname, '..', 'README.md');
const LABEL = 'GSHTEST';
const TREE = { '/d/a.txt': 'hello\n', '/b.txt': 'x'.repeat(70_000) };

/** Made in the guest with mkfs, or on the host by `make` (into a file added read-only). */
interface Filesystem {
  fs: string;
  host?: { tool: string; make: (dir: string, out: string) => void };
}

function hostTree(dir: string): void {
  mkdirSync(join(dir, 'd'), { recursive: true });
  for (const [p, content] of Object.entries(TREE)) writeFileSync(join(dir, p), content);
}

const FILESYSTEMS: Filesystem[] = [
  ...['ext2', 'ext3', 'ext4', 'vfat', 'exfat', 'ntfs', 'xfs', 'btrfs', 'f2fs', 'jfs', 'reiserfs', 'nilfs2', 'hfsplus', 'minix', 'gfs2'].map((fs) => ({ fs })),
  { fs: 'iso9660', host: { tool: 'genisoimage', make: (dir, out) => execFileSync('genisoimage', ['-quiet', '-R', '-J', '-V', LABEL, '-o', out, dir]) } },
  // mkudffs formats but cannot fill: the UDF image is read back empty.
  {
    fs: 'udf',
    host: {
      tool: 'mkudffs',
      make: (_dir, out) => {
        execFileSync('truncate', ['-s', '32M', out]);
        execFileSync('mkudffs', ['--label', LABEL, '--media-type=hd', out], { stdio: 'ignore' });
      },
    },
  },
  { fs: 'squashfs', host: { tool: 'mksquashfs', make: (dir, out) => execFileSync('mksquashfs', [dir, out, '-quiet', '-noappend']) } },
];

interface Row {
  fs: string;
  create: string;
  readBack: string;
  listed: string;
  identity: string;
  fsck: string;
}

const rows: Row[] = [];
const s = new Session();
const hostImages = new Map<string, string>();

function why(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/\s+/g, ' ').replace(/\|/g, '/').slice(0, 90);
}

beforeAll(async () => {
  await s.addDriveScratch(768 * 2 ** 20);
  for (const f of FILESYSTEMS.filter((f) => f.host)) {
    const tree = join(tmp.dir, `tree-${f.fs}`);
    hostTree(tree);
    const out = join(tmp.dir, `${f.fs}.img`);
    try {
      f.host!.make(tree, out);
      hostImages.set(f.fs, out);
      await s.addDrive(out, { format: 'raw', readonly: true });
    } catch (e) {
      rows.push({ fs: f.fs, create: `✗ ${f.host!.tool} on the host: ${why(e)}`, readBack: '', listed: '', identity: '', fsck: '' });
    }
  }
  await s.launch();
  // A partition, not the whole disk: some makers (mkfs.reiserfs) refuse a whole device.
  await s.g.partDisk('/dev/sda', 'mbr');
}, scaled(300_000));

afterAll(async () => {
  await s.close();
  tmp.restore();
});

async function readTree(): Promise<boolean> {
  return (await s.g.cat('/d/a.txt')) === TREE['/d/a.txt'] && (await s.g.cat('/b.txt')) === TREE['/b.txt'];
}

async function identity(device: string, fs: string): Promise<string> {
  const type = await s.g.vfsType(device).catch(() => '');
  const label = await s.g.vfsLabel(device).catch(() => '');
  const uuid = await s.g.vfsUuid(device).catch(() => '');
  return [type === fs ? '✅ type' : `✗ type '${type}'`, label === LABEL ? '✅ label' : `✗ label '${label}'`, uuid ? '✅ UUID' : '✗ no UUID'].join(', ');
}

describe('the filesystem matrix', () => {
  let hostIndex = 0;
  for (const f of FILESYSTEMS) {
    it(f.fs, { timeout: scaled(300_000) }, async () => {
      if (f.host) {
        if (!hostImages.has(f.fs)) return; // its row says why
        const device = `/dev/sd${String.fromCharCode('b'.charCodeAt(0) + hostIndex++)}`;
        const row: Row = { fs: f.fs, create: `read-only: made on the host (${f.host.tool})`, readBack: '', listed: '', identity: '', fsck: 'n/a' };
        try {
          await s.g.mountRo(device, '/');
          row.readBack = f.fs === 'udf' ? 'mounts (empty)' : (await readTree()) ? '✅' : '✗ differs';
          await s.g.umountAll();
        } catch (e) {
          row.readBack = `✗ ${why(e)}`;
        }
        row.listed = (await s.g.listFilesystems())[device] === f.fs ? '✅' : '✗';
        row.identity = await identity(device, f.fs);
        rows.push(row);
        return;
      }
      const dev = '/dev/sda1';
      const row: Row = { fs: f.fs, create: '', readBack: '', listed: '', identity: '', fsck: '' };
      rows.push(row);
      await s.g.wipefs(dev);
      try {
        await s.g.mkfs(f.fs, dev, { label: LABEL });
        row.create = '✅';
      } catch (labelled) {
        try {
          await s.g.mkfs(f.fs, dev);
          row.create = `✅ (no label: ${why(labelled)})`;
        } catch (e) {
          row.create = `✗ ${why(e)}`;
          return;
        }
      }
      try {
        await s.g.mount(dev, '/');
        await s.g.mkdir('/d');
        for (const [p, content] of Object.entries(TREE)) await s.g.write(p, content);
        await s.g.umountAll();
        row.fsck = await s.g.fsck(f.fs, dev).then(
          (status) => (status === 0 ? '✅' : `✗ status ${status}`),
          (e: unknown) => `n/a: ${why(e)}`,
        );
        await s.g.mountRo(dev, '/');
        row.readBack = (await readTree()) ? '✅' : '✗ differs';
        await s.g.umountAll();
      } catch (e) {
        row.readBack = `✗ ${why(e)}`;
        await s.g.umountAll();
      }
      row.listed = (await s.g.listFilesystems())[dev] === f.fs ? '✅' : '✗';
      row.identity = await identity(dev, f.fs);
    });
  }

  it('zfs', async () => {
    // zfs-fuse is in the appliance (libguestfs-zfs), but no libguestfs call makes or mounts a pool.
    const available = await s.g.filesystemAvailable('zfs');
    rows.push({ fs: 'zfs', create: available ? '✅ available' : "✗ filesystem_available says no: zfs-fuse is in the appliance, but no libguestfs 1.48 call makes or mounts a pool", readBack: '', listed: '', identity: '', fsck: '' });
  });

  it('the README shows the measured table', () => {
    const order = [...FILESYSTEMS.map((f) => f.fs), 'zfs'];
    const table = [
      '| filesystem | create | write, read back | list-filesystems | vfs-type / label / UUID | fsck |',
      '|---|---|---|---|---|---|',
      ...rows.sort((a, b) => order.indexOf(a.fs) - order.indexOf(b.fs)).map((r) => `| ${r.fs} | ${r.create} | ${r.readBack} | ${r.listed} | ${r.identity} | ${r.fsck} |`),
    ].join('\n');
    console.log(table);
    const readme = readFileSync(README, 'utf8');
    const block = /(<!-- filesystems:begin[^\n]*-->\n)([\s\S]*?)(\n<!-- filesystems:end -->)/;
    expect(readme).toMatch(block);
    if (process.env.GUESTSH_UPDATE_README === '1') writeFileSync(README, readme.replace(block, (_m, a: string, _t, c: string) => `${a}${table}${c}`));
    else expect(readme.match(block)![2]).toBe(table);
  });
});
