// The dry-run report: exactly the files a run added, removed and modified.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { ext4Image, isolatedTmpdir, rawDisk, sha256 } from './helpers.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
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
      // The untouched copy was unplugged again, and a second comparison (from
      // the listing kept of the untouched image) sees what happened since.
      expect(await s.call('list_devices')).toEqual(['/dev/sda', '/dev/sdb']);
      await s.call('write', ['/etc/keep', 'changed now\n']);
      await s.call('rm', ['/srv/new.txt']);
      const again = await s.changes();
      expect(again.filter((c) => c.filesystem === '/dev/sda')).toEqual([
        { filesystem: '/dev/sda', path: '/etc/hostname', change: 'modified' },
        { filesystem: '/dev/sda', path: '/etc/keep', change: 'modified' },
        { filesystem: '/dev/sda', path: '/mnt', change: 'added' },
        { filesystem: '/dev/sda', path: '/srv', change: 'added' },
        { filesystem: '/dev/sda', path: '/var/log/old.log', change: 'removed' },
      ]);
      expect(await s.call('list_devices')).toEqual(['/dev/sda', '/dev/sdb']);
    } finally {
      await s.close();
    }
    expect([await sha256(img), await sha256(fresh)]).toEqual(hashes);
  });
  it('counts mode, symlink target and same-size content changes; a touch alone is not a change', async () => {
    const img = ext4Image(join(tmp.dir, 'meta.img'), 16, { 'etc/mode': 'm\n', 'etc/samesize': 'aaaa\n', 'etc/touched': 't\n' }, { 'etc/link': 'mode' });
    const hash = await sha256(img);
    const s = new Session();
    try {
      await s.addDrive(img, { format: 'raw' });
      await s.launch();
      await s.call('mount', ['/dev/sda', '/']);
      await s.call('chmod', [0o600, '/etc/mode']);
      await s.call('write', ['/etc/samesize', 'bbbb\n']);
      await s.call('touch', ['/etc/touched']);
      await s.call('ln_sf', ['samesize', '/etc/link']);
      expect(await s.changes()).toEqual([
        { filesystem: '/dev/sda', path: '/etc/link', change: 'modified' },
        { filesystem: '/dev/sda', path: '/etc/mode', change: 'modified' },
        { filesystem: '/dev/sda', path: '/etc/samesize', change: 'modified' },
      ]);
    } finally {
      await s.close();
    }
    expect(await sha256(img)).toBe(hash);
  });
});
