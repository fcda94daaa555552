// Sessions resumed from a saved appliance: they must be indistinguishable from
// cold-booted ones (clock, randomness, devices, results) and independent of
// each other.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { ensureAppliance } from '../src/runtime/appliance/build.js';
import { ext4Image, isAlive, isolatedTmpdir, rawDisk, savedApplianceDir, sha256 } from './helpers.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

async function open(images: string[], opts: { snapshots: boolean; readonly?: boolean } = { snapshots: true }): Promise<Session> {
  const s = new Session();
  s.settings.snapshots = opts.snapshots;
  for (const img of images) await s.addDrive(img, { format: 'raw', readonly: opts.readonly ?? false });
  await s.launch();
  expect(s.launchStats?.mode).toBe(opts.snapshots ? 'snapshot' : 'boot');
  return s;
}

/** name → sha256 of every regular file under / of a mounted filesystem. */
async function tree(s: Session, root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of (await s.call('find', [root])) as string[]) {
    const path = `${root}${rel}`; // find answers '/etc/x', relative to root
    if ((await s.call('is_file', [path])) === true) out[rel] = (await s.call('checksum', ['sha256', path])) as string;
  }
  return out;
}

/** The same work, run in a session: partition, mkfs, mount, write files, shut down. */
async function populate(s: Session): Promise<void> {
  await s.call('part_disk', ['/dev/sda', 'mbr']);
  await s.call('mkfs', ['ext4', '/dev/sda1']);
  await s.call('mount', ['/dev/sda1', '/']);
  await s.call('mkdir_p', ['/etc/app']);
  await s.call('write', ['/etc/app/config', 'answer=42\n']);
  await s.call('write', ['/data.bin', Buffer.alloc(300_000, 7)]);
  await s.call('ln_s', ['data.bin', '/link']);
  await s.shutdown();
  await s.close();
}

describe('resuming a saved appliance', () => {
  it('sets the guest clock to the host time', async () => {
    const s = await open([ext4Image(join(tmp.dir, 'clock.img'), 16, {})]);
    try {
      await s.call('mount', ['/dev/sda', '/']);
      const before = Math.floor(Date.now() / 1000);
      await s.call('touch', ['/now']);
      const after = Math.ceil(Date.now() / 1000);
      const st = (await s.call('statns', ['/now'])) as Record<string, bigint>;
      // The file's mtime is the guest's clock; the saved appliance's clock is
      // minutes or days old unless it was set on resume.
      expect(Number(st.st_mtime_sec)).toBeGreaterThanOrEqual(before - 2);
      expect(Number(st.st_mtime_sec)).toBeLessThanOrEqual(after + 2);
    } finally {
      await s.close();
    }
  });

  it('answers a first list_devices with every disk, in drive order', async () => {
    // guestfsd lists devices from udev's links without settling first: the
    // launch must have waited for udev.
    const s = await open([rawDisk(join(tmp.dir, 'ld0.img'), 16), rawDisk(join(tmp.dir, 'ld1.img'), 16)]);
    try {
      expect(await s.call('list_devices')).toEqual(['/dev/sda', '/dev/sdb']);
    } finally {
      await s.close();
    }
  });

  it('gives each session fresh randomness, and concurrent sessions do not interfere', async () => {
    const [a, b] = await Promise.all([
      open([rawDisk(join(tmp.dir, 'ra.img'), 64)]),
      open([rawDisk(join(tmp.dir, 'rb.img'), 64)]),
    ]);
    try {
      await Promise.all([a.call('mkfs', ['ext4', '/dev/sda']), b.call('mkfs', ['ext4', '/dev/sda'])]);
      const [ua, ub] = await Promise.all([a.call('vfs_uuid', ['/dev/sda']), b.call('vfs_uuid', ['/dev/sda'])]);
      expect(ua).toMatch(/^[0-9a-f-]{36}$/);
      expect(ua).not.toBe(ub);
      const rand = (s: Session) => s.call('debug', ['sh', ['head -c 16 /dev/urandom | od -An -tx1']]);
      expect(await rand(a)).not.toBe(await rand(b));
      // Each writes to its own disk and reads only its own file back.
      await Promise.all([a.call('mount', ['/dev/sda', '/']), b.call('mount', ['/dev/sda', '/'])]);
      await Promise.all([a.call('write', ['/who', 'a']), b.call('write', ['/who', 'b'])]);
      expect(await a.call('cat', ['/who'])).toBe('a');
      expect(await b.call('cat', ['/who'])).toBe('b');
      expect(a.qemuPid).not.toBe(b.qemuPid);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('names and sizes the drives exactly as a cold-booted session does', async () => {
    const images = [16, 48, 32].map((mib, i) => rawDisk(join(tmp.dir, `d${i}.img`), mib));
    const describeDrives = async (s: Session) => {
      const devices = (await s.call('list_devices')) as string[];
      const sizes = await Promise.all(devices.map((d) => s.call('blockdev_getsize64', [d])));
      return { devices, sizes };
    };
    const warm = await open(images);
    const warmView = await describeDrives(warm);
    await warm.close();
    const cold = await open(images, { snapshots: false });
    const coldView = await describeDrives(cold);
    await cold.close();
    expect(warmView.devices).toEqual(['/dev/sda', '/dev/sdb', '/dev/sdc']);
    expect(warmView.sizes).toEqual([16n, 48n, 32n].map((m) => m * 1024n * 1024n));
    expect(warmView).toEqual(coldView);
  });

  it('a full session from the snapshot writes the same contents as a cold-booted one', async () => {
    const warmImg = rawDisk(join(tmp.dir, 'warm.img'), 128);
    const coldImg = rawDisk(join(tmp.dir, 'cold.img'), 128);
    await populate(await open([warmImg]));
    await populate(await open([coldImg], { snapshots: false }));
    const check = await open([warmImg, coldImg], { snapshots: true, readonly: true });
    try {
      await check.call('mkmountpoint', ['/w']);
      await check.call('mkmountpoint', ['/c']);
      await check.call('mount_ro', ['/dev/sda1', '/w']);
      await check.call('mount_ro', ['/dev/sdb1', '/c']);
      const w = await tree(check, '/w');
      const c = await tree(check, '/c');
      expect(Object.keys(w).sort()).toEqual(['/data.bin', '/etc/app/config']);
      expect(w).toEqual(c);
      expect(await check.call('readlink', ['/w/link'])).toBe(await check.call('readlink', ['/c/link']));
    } finally {
      await check.close();
    }
  });

  it('keeps a read-only drive read-only when hot-plugged', async () => {
    const img = ext4Image(join(tmp.dir, 'ro.img'), 16, { f: 'original' });
    const hash = await sha256(img);
    const s = await open([img], { snapshots: true, readonly: true });
    try {
      await s.call('mount', ['/dev/sda', '/']);
      await s.call('write', ['/f', 'changed in the overlay']);
      await s.call('sync');
    } finally {
      await s.close();
    }
    expect(await sha256(img)).toBe(hash);
  });

  it('falls back to a cold boot, and says so with -v, when the saved state is unusable', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'snap-cache-'));
    const saved = process.env.GUESTSH_CACHE;
    process.env.GUESTSH_CACHE = cache;
    try {
      const appliance = await ensureAppliance();
      const s = new Session();
      s.settings.verbose = true;
      const lines: string[] = [];
      s.on('console', (l) => lines.push(l));
      // Plant a corrupt snapshot where this session will look for one.
      const dir = await savedApplianceDir(s, appliance);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'state'), 'not a migration stream');
      writeFileSync(join(dir, 'root.qcow2'), '');
      writeFileSync(join(dir, 'uptime'), '900');
      await s.addDrive(rawDisk(join(tmp.dir, 'fallback.img'), 16), { format: 'raw' });
      await s.launch();
      const pid = s.qemuPid!;
      expect(s.launchStats?.mode).toBe('boot');
      expect(lines.some((l) => l.startsWith('guestsh: resuming a saved appliance failed, booting instead'))).toBe(true);
      expect(await s.call('list_devices')).toEqual(['/dev/sda']);
      await s.close();
      expect(isAlive(pid)).toBe(false);
      expect(existsSync(dir)).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.GUESTSH_CACHE;
      else process.env.GUESTSH_CACHE = saved;
      await rm(cache, { recursive: true, force: true });
    }
  });
});
