// The engine end to end against the real appliance: one VM for the file, three
// drives (two writable raw disks, one read-only ext4 image).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestfsError, Session, UsageError } from '../src/index.js';
import { ext4Image, isAlive, isolatedTmpdir, rawDisk, sha256 } from './helpers.js';

const tmp = isolatedTmpdir();
const s = new Session();
// This file exercises the cold boot path (console capture included); snapshot.test.ts covers resume.
s.settings.snapshots = false;
let roImage: string;
let roHashBefore: string;
const consoleLines: string[] = [];

beforeAll(async () => {
  roImage = ext4Image(join(tmp.dir, 'ro.img'), 32, { 'etc/motd': 'read-only drive\n' });
  roHashBefore = await sha256(roImage);
  s.on('console', (l) => consoleLines.push(l));
  await s.addDrive(rawDisk(join(tmp.dir, 'a.img'), 200), { format: 'raw' });
  await s.addDrive(rawDisk(join(tmp.dir, 'b.img'), 64));
  await s.addDrive(roImage, { readonly: true });
  await s.launch();
});

afterAll(async () => {
  const pid = s.qemuPid;
  await s.close();
  expect(pid !== null && isAlive(pid)).toBe(false);
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

describe('engine', () => {
  it('names the drives /dev/sda, /dev/sdb, /dev/sdc in the order they were added', async () => {
    expect(s.state).toBe('ready');
    expect(await s.call('list_devices')).toEqual(['/dev/sda', '/dev/sdb', '/dev/sdc']);
    // The sizes prove the order is the user's, not the appliance's.
    expect(await s.call('blockdev_getsize64', ['/dev/sda'])).toBe(200n * 1024n * 1024n);
    expect(await s.call('blockdev_getsize64', ['/dev/sdb'])).toBe(64n * 1024n * 1024n);
  });

  it('partitions, makes ext4, mounts, writes and reads back', async () => {
    await s.call('part_disk', ['/dev/sda', 'mbr']);
    expect(await s.call('list_partitions')).toEqual(['/dev/sda1']);
    await s.call('mkfs', ['ext4', '/dev/sda1'], { label: 'data' });
    await s.call('mount', ['/dev/sda1', '/']);
    await s.call('write', ['/hello.txt', 'hello from guestsh\n']);
    expect(await s.call('cat', ['/hello.txt'])).toBe('hello from guestsh\n');
    expect(await s.call('vfs_label', ['/dev/sda1'])).toBe('data');
    const st = (await s.call('statns', ['/hello.txt'])) as Record<string, unknown>;
    expect(st.st_size).toBe(19n);
    expect(await s.call('ls', ['/'])).toEqual(['hello.txt', 'lost+found']);
  });

  it('offers every public action as a typed method on session.g', async () => {
    expect(await s.g.listDevices()).toEqual(['/dev/sda', '/dev/sdb', '/dev/sdc']);
    await s.g.writeAppend('/hello.txt', 'again\n');
    expect(await s.g.headN(2, '/hello.txt')).toEqual(['hello from guestsh', 'again']);
    await s.g.write('/hello.txt', 'hello from guestsh\n');
  });

  it('uses a second drive in the same session', async () => {
    await s.call('mkfs', ['ext2', '/dev/sdb']);
    await s.call('mkdir', ['/second']);
    await s.call('mount', ['/dev/sdb', '/second']);
    await s.call('write', ['/second/b.txt', 'on sdb']);
    expect(await s.call('cat', ['/second/b.txt'])).toBe('on sdb');
    const fs = (await s.call('list_filesystems')) as Record<string, string>;
    expect(fs['/dev/sda1']).toBe('ext4');
    expect(fs['/dev/sdb']).toBe('ext2');
    await s.call('umount', ['/second']);
  });

  it('refuses writes on a read-only drive mounted read-only, and never changes its image', async () => {
    await s.call('mkdir', ['/ro']);
    await s.call('mount_ro', ['/dev/sdc', '/ro']);
    expect(await s.call('cat', ['/ro/etc/motd'])).toBe('read-only drive\n');
    const err = await s.call('write', ['/ro/etc/motd', 'changed']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestfsError);
    expect((err as GuestfsError).errno).toBe('EROFS');
    await s.call('umount', ['/ro']);
    // Even a read-write mount of the read-only drive writes only to its throwaway overlay.
    await s.call('mount', ['/dev/sdc', '/ro']);
    await s.call('write', ['/ro/etc/motd', 'changed in the overlay']);
    expect(await s.call('cat', ['/ro/etc/motd'])).toBe('changed in the overlay');
    await s.call('umount', ['/ro']);
    await s.call('sync');
    expect(await sha256(roImage)).toBe(roHashBefore);
  });

  it('returns a daemon error as a typed error and stays usable', async () => {
    const err = await s.call('mount', ['/dev/sdz1', '/mnt']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestfsError);
    const g = err as GuestfsError;
    expect(g.action).toBe('mount');
    expect(g.errno).toBe('ENOENT');
    expect(g.message).toContain('/dev/sdz1');
    expect(await s.call('cat', ['/hello.txt'])).toBe('hello from guestsh\n');
  });

  it('checks argument kinds and counts before anything reaches the wire', async () => {
    await expect(s.call('mount', ['/dev/sda1'])).rejects.toThrow(/expects 2 argument/);
    await expect(s.call('mkfs', ['ext4', '/dev/sda1'], { lable: 'x' })).rejects.toThrow(/unknown optional argument 'lable'/);
    await expect(s.call('blockdev_setro', [42])).rejects.toBeInstanceOf(UsageError);
    await expect(s.call('no_such_call')).rejects.toThrow(/unknown action/);
    // A daemon call from a feature group the appliance lacks names the group.
    // (selinuxrelabel: no Debian package adds setfiles to the appliance.)
    await expect(s.call('selinux_relabel', ['/etc/selinux/targeted/contexts/files/file_contexts', '/'])).rejects.toThrow(/lacks the optional feature group "selinuxrelabel"/);
    expect(await s.call('exists', ['/hello.txt'])).toBe(true);
  });

  it('refuses a message over the 4 MiB protocol limit with a clear error and stays in sync', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 0x61);
    await expect(s.call('internal_write', ['/big', big])).rejects.toThrow(/over the 4194304-byte protocol limit/);
    // The library-side write streams large content instead, like libguestfs.
    await s.call('write', ['/big', big]);
    expect(await s.call('filesize', ['/big'])).toBe(BigInt(big.length));
    // A reply that would exceed the limit is refused by guestfsd, not a hang.
    const lines = Buffer.from('x\n'.repeat(3 * 1024 * 1024));
    await s.call('write', ['/lines', lines]);
    await expect(s.call('head_n', [4_000_000, '/lines'])).rejects.toBeInstanceOf(GuestfsError);
    expect(await s.call('exists', ['/lines'])).toBe(true);
  });

  it('captured the appliance console while it booted', () => {
    expect(consoleLines.some((l) => l.includes('supermin'))).toBe(true);
  });

  it('shuts down cleanly and leaves nothing behind', async () => {
    const runDir = s.runDirectory!;
    const pid = s.qemuPid!;
    await s.shutdown();
    expect(s.state).toBe('closed');
    expect(isAlive(pid)).toBe(false);
    await s.close();
    expect(existsSync(runDir)).toBe(false);
    await expect(s.call('ls', ['/'])).rejects.toThrow(/session is closed/);
  });
});
