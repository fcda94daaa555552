// A resume that fails part-way must leave nothing of the resumed VM behind:
// the session boots cold, the boot answers over its own channel, and after
// close no qemu process or temp directory of the session is left.
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Session } from '../src/index.js';
import { ensureAppliance } from '../src/runtime/appliance/build.js';
import type { Vm } from '../src/runtime/qemu/vm.js';
import { hotplugFaultForTests } from '../src/runtime/session/resume.js';
import { isAlive, isolatedTmpdir, qemuUnder, rawDisk, savedApplianceDir } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

/** Pids of the qemu processes whose command line names `runDir` (its sockets live there). */
function qemuProcessesOf(runDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const [argv0] = cmdline.split('\0');
    if (argv0 && basename(argv0).startsWith('qemu-system') && cmdline.includes(runDir)) pids.push(Number(entry));
  }
  return pids;
}

/** Closes `s` and checks that its qemu processes and run directory are gone. */
async function closeAndCheckNothingLeaks(s: Session, pids: number[]): Promise<void> {
  const runDir = s.runDirectory!;
  await s.close();
  for (const pid of pids) expect(isAlive(pid), `qemu ${pid}`).toBe(false);
  expect(qemuProcessesOf(runDir)).toEqual([]);
  expect(existsSync(runDir)).toBe(false);
}

/**
 * A cache directory of its own whose appliance is the real one, linked file
 * by file (no rebuild): a planted saved state then lands in this copy's
 * snapshots directory, not in the one other tests and sessions share.
 */
async function privateCache(): Promise<{ dir: string; restore: () => Promise<void> }> {
  const real = await ensureAppliance();
  const dir = await mkdtemp(join(tmpdir(), 'lifecycle-cache-'));
  const copy = join(dir, 'appliance', basename(real.dir));
  mkdirSync(copy, { recursive: true });
  for (const f of readdirSync(real.dir)) if (f !== 'snapshots') symlinkSync(join(real.dir, f), join(copy, f));
  const saved = process.env.GUESTSH_CACHE;
  process.env.GUESTSH_CACHE = dir;
  return {
    dir,
    restore: async () => {
      if (saved === undefined) delete process.env.GUESTSH_CACHE;
      else process.env.GUESTSH_CACHE = saved;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('a resume that fails part-way', () => {
  it('with a corrupt saved state: boots cold, answers, and leaves no qemu or temp dir', async () => {
    const cache = await privateCache();
    try {
      const appliance = await ensureAppliance();
      expect(appliance.dir.startsWith(cache.dir)).toBe(true);
      const s = new Session();
      const dir = await savedApplianceDir(s, appliance);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'state'), 'not a migration stream');
      writeFileSync(join(dir, 'root.qcow2'), '');
      writeFileSync(join(dir, 'uptime'), '900');
      await s.addDrive(rawDisk(join(tmp.dir, 'corrupt.img'), 16), { format: 'raw' });
      try {
        await s.launch();
        expect(s.state).toBe('ready');
        expect(s.launchStats?.mode).toBe('boot');
        // The restored qemu was reaped before the boot: one qemu for this session.
        expect(qemuProcessesOf(s.runDirectory!)).toEqual([s.qemuPid]);
        expect(await s.call('list_devices')).toEqual(['/dev/sda']);
      } finally {
        await closeAndCheckNothingLeaks(s, s.qemuPid === null ? [] : [s.qemuPid]);
      }
    } finally {
      await cache.restore();
    }
  });

  it('with a failing hot-plug: tears the resumed VM down, boots cold over a new channel, and leaves nothing', async () => {
    let resumed: Vm | null = null;
    let channelWasLive = false;
    let writesAfterFailure: ReturnType<typeof vi.spyOn> | null = null;
    // The second disk's plug fails after the guest is already running and
    // has answered over its channel (the wait for the first disk).
    hotplugFaultForTests.hook = (vm, disk) => {
      if (disk !== 1) return;
      resumed = vm;
      channelWasLive = !vm.channel!.closed;
      writesAfterFailure = vi.spyOn(vm.channel!, 'write');
      throw new Error('injected hot-plug failure');
    };
    const s = new Session();
    try {
      await s.addDrive(rawDisk(join(tmp.dir, 'hp0.img'), 16), { format: 'raw' });
      await s.addDrive(rawDisk(join(tmp.dir, 'hp1.img'), 24), { format: 'raw' });
      await s.launch();
      hotplugFaultForTests.hook = null;
      const old = resumed as Vm | null;
      expect(old, 'the resume reached the hot-plug of the second disk').not.toBeNull();
      expect(channelWasLive).toBe(true);
      expect(s.state).toBe('ready');
      expect(s.launchStats?.mode).toBe('boot');
      // The resumed VM is dead, reaped, and nobody listens to it any more.
      expect(isAlive(old!.pid)).toBe(false);
      expect(old!.channel!.closed).toBe(true);
      expect(old!.channel!.listenerCount('progress')).toBe(0);
      expect(s.qemuPid).not.toBe(old!.pid);
      expect(qemuProcessesOf(s.runDirectory!)).toEqual([s.qemuPid]);
      // The cold-booted VM answers, in drive order, and the old channel carried none of it.
      expect(await s.call('list_devices')).toEqual(['/dev/sda', '/dev/sdb']);
      expect(await s.g.blockdevGetsize64('/dev/sdb')).toBe(24n * 1024n * 1024n);
      expect(writesAfterFailure).not.toBeNull();
      expect(writesAfterFailure!).not.toHaveBeenCalled();
    } finally {
      hotplugFaultForTests.hook = null;
      await closeAndCheckNothingLeaks(s, [s.qemuPid, (resumed as Vm | null)?.pid].filter((p): p is number => typeof p === 'number'));
    }
  });
});

describe('close() while the launch is under way', () => {
  // A stop (Ctrl-C, a kill of `guestsh run`) closes the session wherever its
  // launch has got to: choosing the accelerator, restoring the saved VM,
  // plugging the disks, settling, booting. close() must end the launch,
  // reap its qemu and only then remove the run directory: before, a qemu
  // started meanwhile wrote into the directory being removed (ENOTEMPTY,
  // an unhandled rejection that crashed the process) or waited in a removed one.
  it('at moments spread over the whole launch: the launch gives up, close() returns, no qemu and no run directory are left', async () => {
    const img = rawDisk(join(tmp.dir, 'closing.img'), 16);
    const calm = new Session();
    await calm.addDrive(img, { format: 'raw' });
    const t0 = performance.now();
    await calm.launch();
    const launchMs = performance.now() - t0;
    await calm.close();
    const TRIALS = 12;
    const outcomes: string[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const s = new Session();
      await s.addDrive(img, { format: 'raw' });
      const launched = s.launch().then(
        () => 'launched',
        (e: Error) => e.message,
      );
      // From the very start to a little past a calm launch's end.
      await sleep((launchMs * 1.1 * i) / (TRIALS - 1));
      const closed = s.close().then(
        () => 'closed',
        (e: Error) => `close failed: ${e.message}`,
      );
      const bound = sleep(scaled(20_000)).then(() => 'still running');
      const [launch, close] = await Promise.all([Promise.race([launched, bound]), Promise.race([closed, bound])]);
      outcomes.push(launch === 'launched' ? 'launched' : 'gave up');
      expect(close, `trial ${i}: close`).toBe('closed');
      expect(launch, `trial ${i}: launch`).not.toBe('still running');
      if (launch !== 'launched') expect(launch, `trial ${i}`).toMatch(/closed|session is closed|the appliance (died|failed to start)/);
      expect(s.state).toBe('closed');
      expect(qemuUnder(tmp.dir), `trial ${i}: qemu left`).toEqual([]);
      expect(tmp.leftovers(), `trial ${i}: run directory left`).toEqual([]);
    }
    console.log(`close() during a launch of ${Math.round(launchMs)} ms: ${JSON.stringify(outcomes)}`);
    expect(outcomes).toContain('gave up');
  });
});
