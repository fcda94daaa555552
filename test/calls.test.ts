// Call coverage: every case of test/calls/ against the real appliance. One
// appliance for the whole file (five drives: blank disks, an ext4 disk, the
// Debian guest read-only), plus one session that is never launched for the
// config-state calls. Fixtures are set up per group inside the same VM.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionByName } from '../src/spec/index.js';
import { Session } from '../src/index.js';
import type { ArgValue, OptArgs } from '../src/spec/values.js';
import type { CallTransfer } from '../src/runtime/session/session.js';
import { notSupported } from '../src/runtime/session/library/index.js';
import { ensureGuest, readTruth } from '../testdata/index.js';
import { emptyHive } from '../testdata/windows.js';
import { coverage, type Ctx, type FixtureName, groups } from './calls/index.js';
import { isAlive, isolatedTmpdir, rawDisk } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
const s = new Session();
const cfg = new Session();
const facts: Record<string, unknown> = {};

beforeAll(async () => {
  const images = await ensureGuest('debian');
  facts.truth = readTruth(images);
  facts.ext4Image = rawDisk(join(tmp.dir, 'ext4.img'), 512);
  // A hive with only a root key, written by the test-guest builder (no
  // libguestfs test data needed on the machine).
  facts.minimalHive = join(tmp.dir, 'minimal-hive');
  writeFileSync(facts.minimalHive as string, emptyHive('ROOT'));
  await s.addDriveScratch(1024n * 1024n * 1024n);
  await s.addDrive(facts.ext4Image as string, { format: 'raw' });
  await s.addDrive(images.qcow2, { readonly: true });
  await s.addDriveScratch(128n * 1024n * 1024n, { label: 'scratchd' });
  await s.addDriveScratch(128n * 1024n * 1024n);
});

afterAll(async () => {
  const pid = s.qemuPid;
  await s.close();
  await cfg.close();
  expect(pid !== null && isAlive(pid)).toBe(false);
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

function ctxFor(session: Session, called: Set<string>): Ctx {
  const call = (name: string, args: ArgValue[] = [], opt: OptArgs = {}, transfer?: CallTransfer) => {
    called.add(actionByName(name)?.name ?? name);
    return session.call(name, args, opt, transfer);
  };
  return {
    s: session,
    tmp: tmp.dir,
    f: facts,
    call,
    async fails(re, name, args = [], opt = {}) {
      let err: unknown = null;
      try {
        await call(name, args, opt);
      } catch (e) {
        err = e;
      }
      if (!(err instanceof Error)) throw new Error(`${name} was expected to fail with ${re}, but succeeded`);
      expect(err.message).toMatch(re);
      return err;
    },
  };
}

// Before each blank-disk case: nothing mounted, no md/LVM/dm holding the
// scratch disks, no old signatures at their start.
async function resetBlank(g: Session): Promise<void> {
  await g.call('umount_all');
  for (const md of (await g.call('list_md_devices')) as string[]) await g.call('md_stop', [md]);
  for (const dm of (await g.call('list_dm_devices')) as string[]) await g.call('cryptsetup_close', [dm]).catch(() => {});
  await g.call('lvm_remove_all');
  for (const d of ['/dev/sda', '/dev/sdd', '/dev/sde']) {
    await g.call('wipefs', [d]).catch(() => {});
    await g.call('zero', [d]);
  }
}

async function mountGuest(g: Session, mps: Record<string, string>): Promise<void> {
  for (const mp of Object.keys(mps).sort((a, b) => a.length - b.length)) await g.call('mount', [mps[mp]!, mp]);
}

// A case that failed half-way (or inspect_os, which unmounts everything) must
// not take the next case's mounts with it.
async function remount(g: Session, fixture: 'ext4' | 'guest'): Promise<void> {
  const want = fixture === 'ext4' ? ['/dev/sdb'] : Object.values(facts.mountpoints as Record<string, string>).sort();
  const have = ((await g.call('mounts')) as string[]).sort();
  if (JSON.stringify(have) === JSON.stringify(want)) return;
  if (fixture === 'ext4') return fixtureSetup.ext4(g, false);
  // The daemon keeps its inspection results: no need to inspect again (slow under TCG).
  await g.call('umount_all');
  await mountGuest(g, facts.mountpoints as Record<string, string>);
}

const fixtureSetup: Record<FixtureName, (session: Session, first?: boolean) => Promise<void>> = {
  config: async () => {},
  boot: async () => {},
  blank: async (g) => {
    await g.call('umount_all');
    for (const d of ['/dev/sda', '/dev/sdd', '/dev/sde']) await g.call('zero', [d]);
  },
  ext4: async (g, first = true) => {
    await g.call('umount_all');
    if (first) await g.call('mkfs', ['ext4', '/dev/sdb']);
    await g.call('mount', ['/dev/sdb', '/']);
  },
  guest: async (g) => {
    await g.call('umount_all');
    const roots = (await g.call('inspect_os')) as string[];
    facts.root = roots[0];
    const mps = (await g.call('inspect_get_mountpoints', [roots[0]!])) as Record<string, string>;
    facts.mountpoints = mps;
    await mountGuest(g, mps);
  },
  lifecycle: async (g) => {
    await g.call('umount_all');
    await g.call('mount', ['/dev/sdb', '/']);
  },
};

for (const group of groups) {
  describe(`${group.fixture}: ${group.title}`, () => {
    const session = group.fixture === 'config' ? cfg : s;
    beforeAll(async () => {
      if (group.fixture !== 'config' && group.fixture !== 'boot') await fixtureSetup[group.fixture](session);
    });
    for (const c of group.cases) {
      it(c.actions.join(' '), { timeout: scaled(c.timeoutMs ?? 120_000) }, async () => {
        if (group.fixture === 'blank') await resetBlank(session);
        if (group.fixture === 'ext4' || group.fixture === 'guest') await remount(session, group.fixture);
        const called = new Set<string>();
        await c.run(ctxFor(session, called));
        const missing = c.actions.filter((a) => !called.has(a));
        expect(missing, 'actions named by the case but never called').toEqual([]);
      });
    }
  });
}

describe('coverage', () => {
  it('accounts for every public action, exercised or listed with a reason', () => {
    const cov = coverage();
    expect(cov.unknown).toEqual([]);
    expect(cov.unaccounted).toEqual([]);
    expect(cov.exercised.length + cov.notExercised.length).toBe(cov.publicCount);
    // The floor actually reached; raise it when cases are added.
    expect(cov.exercised.length / cov.publicCount).toBeGreaterThanOrEqual(0.9);
  });

  it('refuses each not-supported action with "not supported in guestsh: <reason>"', async () => {
    for (const [name, reason] of Object.entries(notSupported)) {
      const a = actionByName(name)!;
      const args = a.args.map((x) => (x.kind === 'Int' ? 0 : x.kind === 'Bool' ? false : x.kind === 'StringList' ? [] : x.kind === 'BufferIn' ? 'x' : x.kind === 'OptString' ? null : 'x'));
      if (a.args.some((x) => x.kind === 'Pointer')) continue; // cannot even be passed from TypeScript
      const fresh = new Session();
      try {
        await expect(fresh.call(name, args)).rejects.toThrow(`${name}: not supported in guestsh: ${reason}`);
      } finally {
        await fresh.close();
      }
    }
  });
});
