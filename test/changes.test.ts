// The dry-run report: exactly the files a run added, removed and modified.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { ext4Image, isolatedTmpdir, rawDisk, sha256 } from './helpers.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  expect(tmp.leftovers()).toEqual([]);
  tmp.restore();
});

describe('changes (dry run)', () => {
  it('lists exactly the files a run changed, then discards them', async () => {
    const img = ext4Image(join(tmp.dir, 'dry.img'), 32, {
      'etc/hostname': 'before\n',
      'etc/keep': 'unchanged\n',
      'var/log/old.log': 'old\n',
    });
    const fresh = rawDisk(join(tmp.dir, 'fresh.img'), 32);
    const hashes = [await sha256(img), await sha256(fresh)];
    const s = new Session();
    try {
      await s.addDrive(img, { format: 'raw' });
      await s.addDrive(fresh, { format: 'raw' });
      await s.launch();
      await s.call('mount', ['/dev/sda', '/']);
      await s.call('write', ['/etc/hostname', 'after\n']);
      await s.call('rm', ['/var/log/old.log']);
      await s.call('mkdir', ['/srv']);
      await s.call('write', ['/srv/new.txt', 'new\n']);
      // Same content written back: not a change.
      await s.call('write', ['/etc/keep', 'unchanged\n']);
      // A filesystem created by the run: all of it is new.
      await s.call('mkfs', ['ext4', '/dev/sdb']);
      await s.call('mkdir', ['/mnt']);
      await s.call('mount', ['/dev/sdb', '/mnt']);
      await s.call('write', ['/mnt/x', 'x']);
      const changes = await s.changes();
      expect(changes).toEqual([
        { filesystem: '/dev/sda', path: '/etc/hostname', change: 'modified' },
        { filesystem: '/dev/sda', path: '/mnt', change: 'added' },
        { filesystem: '/dev/sda', path: '/srv', change: 'added' },
        { filesystem: '/dev/sda', path: '/srv/new.txt', change: 'added' },
        { filesystem: '/dev/sda', path: '/var/log/old.log', change: 'removed' },
        { filesystem: '/dev/sdb', path: '/lost+found', change: 'added' },
        { filesystem: '/dev/sdb', path: '/x', change: 'added' },
      ]);
      // The session's own view is back as it was before the comparison.
      expect(await s.call('mountpoints')).toEqual({ '/dev/sda': '/', '/dev/sdb': '/mnt' });
      expect(await s.call('cat', ['/srv/new.txt'])).toBe('new\n');
    } finally {
      await s.close();
    }
    expect([await sha256(img), await sha256(fresh)]).toEqual(hashes);
  });
});
