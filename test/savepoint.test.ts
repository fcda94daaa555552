// Savepoints inside a live session: write, savepoint, write, roll back, read.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Session, UsageError } from '../src/index.js';
import { ext4Image, isolatedTmpdir, rawDisk, sha256 } from './helpers.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

describe('savepoints', () => {
  it('rolls back to a savepoint in the same session, across mounts and two disks', async () => {
    const img = ext4Image(join(tmp.dir, 'sp.img'), 64, { 'base.txt': 'base\n' });
    const second = rawDisk(join(tmp.dir, 'second.img'), 32);
    const s = new Session();
    try {
      await s.addDrive(img, { format: 'raw' });
      await s.addDrive(second, { format: 'raw' });
      await s.launch();
      await s.call('mount', ['/dev/sda', '/']);
      await s.call('mkfs', ['ext2', '/dev/sdb']);
      await s.call('mkdir', ['/data']);
      await s.call('mount', ['/dev/sdb', '/data']);
      await s.call('write', ['/first.txt', 'first write\n']);
      await s.call('write', ['/data/d1', 'on sdb before\n']);
      await s.g.savepoint('one');
      await s.call('write', ['/second.txt', 'second write\n']);
      await s.call('write', ['/first.txt', 'overwritten\n']);
      await s.call('rm', ['/base.txt']);
      await s.call('write', ['/data/d1', 'on sdb after\n']);
      expect(await s.call('cat', ['/first.txt'])).toBe('overwritten\n');

      await s.g.rollbackTo('one');
      // The guest's view is the savepoint's: the same mounts, no stale cache.
      expect(await s.call('mountpoints')).toEqual({ '/dev/sda': '/', '/dev/sdb': '/data' });
      expect(await s.call('cat', ['/first.txt'])).toBe('first write\n');
      expect(await s.call('exists', ['/second.txt'])).toBe(false);
      expect(await s.call('cat', ['/base.txt'])).toBe('base\n');
      expect(await s.call('cat', ['/data/d1'])).toBe('on sdb before\n');
      expect(await s.call('list_devices')).toEqual(['/dev/sda', '/dev/sdb']);

      // Rolling back twice to the same savepoint works; later ones are gone.
      await s.g.savepoint('two');
      await s.call('write', ['/third.txt', '3\n']);
      await s.g.rollbackTo('one');
      expect(await s.call('exists', ['/third.txt'])).toBe(false);
      await expect(s.g.rollbackTo('two')).rejects.toThrow(/no savepoint named 'two' \(savepoints: one\)/);

      // What is committed at shutdown is the state after the last rollback plus later writes.
      await s.call('write', ['/after-rollback.txt', 'kept\n']);
      await s.shutdown();
    } finally {
      await s.close();
    }
    const check = new Session();
    try {
      await check.addDrive(img, { format: 'raw', readonly: true });
      await check.launch();
      await check.call('mount_ro', ['/dev/sda', '/']);
      expect(await check.call('ls', ['/'])).toEqual(['after-rollback.txt', 'base.txt', 'data', 'first.txt', 'lost+found']);
      expect(await check.call('cat', ['/first.txt'])).toBe('first write\n');
    } finally {
      await check.close();
    }
  });

  it('refuses savepoints without a read-write drive, and rollback to an unknown name', async () => {
    const img = ext4Image(join(tmp.dir, 'ro.img'), 16, {});
    const hash = await sha256(img);
    const s = new Session();
    try {
      await s.addDrive(img, { format: 'raw', readonly: true });
      await s.launch();
      await expect(s.g.savepoint('x')).rejects.toBeInstanceOf(UsageError);
      await expect(s.g.rollbackTo('nope')).rejects.toThrow(/no savepoint named 'nope'/);
    } finally {
      await s.close();
    }
    expect(await sha256(img)).toBe(hash);
  });
});
