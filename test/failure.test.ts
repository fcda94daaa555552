// What happens when things go wrong: qemu killed mid-call, bad images, bad
// command lines. Each must end in a clear error, never a hang or a leak.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { ApplianceError, Session, UsageError } from '../src/index.js';
import { ensureAppliance } from '../src/runtime/appliance/build.js';
import { chooseAccel } from '../src/runtime/qemu/accel.js';
import { CLI, isAlive, isolatedTmpdir, qemuUnder, rawDisk, guestsh } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

/** Resolves to the outcome of `p`, or 'timeout' if it is still pending after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, sleep(ms).then(() => 'timeout' as const)]);
}

describe('owner killed', () => {
  it('a session killed (SIGKILL) before its appliance started leaves no run directory behind', async () => {
    // The child adds a read-only drive (its throwaway overlay makes the run directory) and then waits: no qemu yet.
    const img = rawDisk(join(tmp.dir, 'early-kill.img'), 16);
    const index = join(import.meta.dirname, '..', 'dist', 'src', 'index.js');
    const child = spawn(process.execPath, ['-e', `import(${JSON.stringify(index)}).then(async ({ Session }) => {
      const s = new Session(); await s.addDrive(${JSON.stringify(img)}, { readonly: true }); console.log(s.runDirectory); setInterval(() => {}, 1000); })`], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TMPDIR: tmp.dir },
    });
    const runDir = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
      child.once('exit', (code) => reject(new Error(`the child exited (${code}) before adding its drive`)));
    });
    expect(existsSync(runDir)).toBe(true);
    child.kill('SIGKILL');
    for (let i = 0; i < 20 && existsSync(runDir); i++) await sleep(250);
    expect(existsSync(runDir)).toBe(false);
  });
});

describe('appliance death', () => {
  it('killing qemu mid-call gives a clear error within 5 s, cleans up, and the handle takes drives and launches again', { timeout: scaled(240_000) }, async () => {
    const s = new Session();
    const img = rawDisk(join(tmp.dir, 'kill.img'), 16);
    const before = readFileSync(img);
    await s.addDrive(img);
    await s.launch();
    const pid = s.qemuPid!;
    const runDir = s.runDirectory!;
    const quits: string[] = [];
    s.on('applianceQuit', () => quits.push(s.state));
    // Written but never committed: the dead appliance's transaction must not reach the image.
    await s.call('mkfs', ['ext4', '/dev/sda']);
    // A call that would run for a minute inside the appliance.
    const call = s.call('debug', ['sh', ['sleep 60']]).catch((e: unknown) => e);
    await sleep(500);
    process.kill(pid, 'SIGKILL');
    const outcome = await within(call, scaled(5000));
    expect(outcome).toBeInstanceOf(ApplianceError);
    expect((outcome as Error).message).toMatch(/debug: the appliance died: qemu was killed by SIGKILL/);
    // Back in config as libguestfs puts its handle back: no drives, nothing of the dead appliance left.
    expect(s.state).toBe('config');
    expect(quits).toEqual(['stopped']);
    expect(s.drives).toEqual([]);
    expect(s.runDirectory).toBeNull();
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(runDir)).toBe(false);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('kill.img.'))).toEqual([]);
    expect(readFileSync(img).equals(before)).toBe(true);
    await expect(s.call('mkdir', ['/x'])).rejects.toThrow(/mkdir: not allowed in state config: launch the appliance first/);
    // The same image again (its lock was released), and a second one: a new appliance.
    await s.addDrive(img);
    await s.addDriveScratch(16 * 1024 * 1024);
    await s.launch();
    expect(s.qemuPid).not.toBe(pid);
    expect(await s.g.listDevices()).toEqual(['/dev/sda', '/dev/sdb']);
    // Only the new appliance's qemu runs under this test's directory.
    expect(qemuUnder(tmp.dir)).toEqual([s.qemuPid]);
    await s.close();
    expect(qemuUnder(tmp.dir)).toEqual([]);
    expect(readFileSync(img).equals(before)).toBe(true);
  });

  it('kill-subprocess commits what was written, and the shell adds a drive and launches again', { timeout: scaled(240_000) }, async () => {
    const img = rawDisk(join(tmp.dir, 'killsub.img'), 16);
    const script = join(tmp.dir, 'killsub.gfs');
    writeFileSync(script, ['run', 'mkfs ext4 /dev/sda', 'kill-subprocess', '-mkdir /x', `add-drive-ro ${img}`, 'run', 'mount-ro /dev/sda /', 'ls /', ''].join('\n'));
    const r = await guestsh(['--format=raw', '-a', img, '-f', script]);
    expect(r.stderr).toBe(`guestsh: ${script}:4: error: mkdir: not allowed in state config: launch the appliance first (run or launch)\n`);
    expect(r.code).toBe(0);
    // The mkfs was committed by kill-subprocess: the second appliance mounts it.
    expect(r.stdout).toBe('lost+found\n');
    expect(qemuUnder(tmp.dir)).toEqual([]);
  });
});

describe('qemu dying at launch', () => {
  /** Runs the CLI on a fresh image; `onQemu` is called once for each qemu it starts. */
  async function launch(env: NodeJS.ProcessEnv, onQemu: (pid: number) => void): Promise<{ code: number | null; stderr: string; qemuMs: number }> {
    const img = rawDisk(join(tmp.dir, 'launch.img'), 16);
    let started = 0;
    const cli = spawn('node', [CLI, '--format=raw', '-a', img, 'run', ':', 'list-devices'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    cli.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const seen = new Set<number>();
    const watch = setInterval(() => {
      for (const pid of qemuUnder(tmp.dir)) {
        if (seen.has(pid)) continue;
        seen.add(pid);
        started ||= Date.now();
        onQemu(pid);
      }
    }, 10);
    const code = await new Promise<number | null>((resolve) => cli.on('close', (c) => resolve(c)));
    clearInterval(watch);
    return { code, stderr, qemuMs: Date.now() - started };
  }

  it('killed while the appliance starts (resumed, then booted), qemu is named with its signal, not a socket it left', async () => {
    // How long qemu lives in a whole run (a resume, a call, the quit): the kills land in its first part, the launch.
    const calm = await launch(process.env, () => {});
    expect(calm.code).toBe(0);
    const outcomes: string[] = [];
    let trialsHit = 0;
    for (let trial = 0; trial < 4; trial++) {
      // Each qemu the run starts (a failed resume falls back to a cold boot: a second one) gets its kill.
      const started: { pid: number; hit: boolean }[] = [];
      const r = await launch(process.env, (pid) => {
        const q = { pid, hit: false };
        started.push(q);
        setTimeout(() => {
          try {
            process.kill(pid, 'SIGKILL');
            q.hit = true;
          } catch {
            // it ended first: the launch went on without it
          }
        }, Math.random() * calm.qemuMs * 0.6);
      });
      const first = r.stderr.split('\n')[0]!;
      outcomes.push(first.replace(/;.*/, '') || `exit ${r.code}`);
      // On a machine whose speed changed since `calm` was measured, the run can end before its
      // qemu's kill: then the launch went on without it. A kill that hit the last qemu is the run's end.
      if (!started.at(-1)?.hit) {
        expect(r.code, r.stderr).toBe(0);
        continue;
      }
      trialsHit++;
      expect(r.code).toBe(1);
      expect(first).toMatch(/^guestsh: error: (the appliance failed to start|\w+: the appliance died): qemu was killed by SIGKILL/);
    }
    console.log(`qemu killed at launch (qemu lives ${calm.qemuMs} ms in a whole run here): ${JSON.stringify(outcomes)}`);
    expect(trialsHit, 'trials whose kill landed').toBeGreaterThan(0);
  });

  it('exiting by itself, qemu is quoted: its exit status and its last error lines', async () => {
    // The real qemu, given a device that does not exist.
    const bin = join(tmp.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'qemu-system-x86_64'), `#!/bin/sh\nexec ${execFileSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).trim()} -device no-such-device "$@"\n`, { mode: 0o755 });
    const r = await launch({ ...process.env, PATH: `${bin}:${process.env.PATH}` }, () => {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "guestsh: error: the appliance failed to start: qemu exited with status 1; its last error output:\n  qemu-system-x86_64: -device no-such-device: 'no-such-device' is not a valid device model name\n",
    );
  });
});

describe('bad images', () => {
  it('a missing image is a one-line error naming the file', async () => {
    const s = new Session();
    const missing = join(tmp.dir, 'nope.qcow2');
    const err = await s.addDrive(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(`disk image '${missing}' does not exist`);
    await s.close();
  });

  it('a corrupt qcow2 is a one-line error naming the file', async () => {
    const corrupt = join(tmp.dir, 'corrupt.qcow2');
    // A qcow2 magic followed by garbage: qemu recognises the format and rejects the header.
    writeFileSync(corrupt, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(4, 0xff), Buffer.alloc(1024, 7)]));
    const s = new Session();
    const err = await s.addDrive(corrupt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    const msg = (err as Error).message;
    expect(msg.startsWith(`disk image '${corrupt}' cannot be opened: `)).toBe(true);
    expect(msg.includes('\n')).toBe(false);
    await s.close();
  });

  it('the CLI answers a missing image with one line on stderr and exit 4 (as guestsh run does), before booting anything', async () => {
    const r = await guestsh(['-a', join(tmp.dir, 'absent.img'), 'run', ':', 'list-devices']);
    expect(r.code).toBe(4);
    expect(r.stderr.trim().split('\n')).toEqual([`guestsh: error: disk image '${join(tmp.dir, 'absent.img')}' does not exist`]);
    expect(r.stdout).toBe('');
  });

  it('the CLI answers an unknown option with exit 2 and an unknown command with a suggestion', async () => {
    const bad = await guestsh(['--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option '--bogus'");
    const img = rawDisk(join(tmp.dir, 'cli.img'), 16);
    const typo = await guestsh(['-a', img, 'run', ':', 'list-devics']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain("unknown command 'list-devics'; did you mean list-devices");
  });
});

describe('acceleration probe', () => {
  it('decides KVM or TCG with a bounded probe, and the appliance boots with the verdict', async () => {
    const appliance = await ensureAppliance();
    const cache = await mkdtemp(join(tmpdir(), 'probe-cache-'));
    const saved = { cache: process.env.GUESTSH_CACHE, accel: process.env.GUESTSH_ACCEL, lg: process.env.LIBGUESTFS_BACKEND_SETTINGS };
    process.env.GUESTSH_CACHE = cache;
    delete process.env.GUESTSH_ACCEL;
    delete process.env.LIBGUESTFS_BACKEND_SETTINGS;
    try {
      const started = Date.now();
      const choice = await within(chooseAccel(appliance.kernel), scaled(15_000));
      expect(choice).not.toBe('timeout');
      const c = choice as Awaited<ReturnType<typeof chooseAccel>>;
      console.log(`acceleration probe: ${c.accel} after ${Date.now() - started} ms (${c.reason})`);
      expect(c.probed).toBe(true);
      if (c.accel === 'tcg') expect(c.reason).toMatch(/using TCG/);
      // The verdict is cached: asking again does not probe.
      expect((await chooseAccel(appliance.kernel)).probed).toBe(false);
    } finally {
      for (const [k, v] of [['GUESTSH_CACHE', saved.cache], ['GUESTSH_ACCEL', saved.accel], ['LIBGUESTFS_BACKEND_SETTINGS', saved.lg]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await rm(cache, { recursive: true, force: true });
    }
  });

  it('on this machine class (nested KVM hangs guests) the probe falls back to TCG', async () => {
    const appliance = await ensureAppliance();
    const choice = await chooseAccel(appliance.kernel);
    if (process.env.GUESTSH_EXPECT_KVM === '1') {
      console.log('skipped: GUESTSH_EXPECT_KVM=1 says this host has working KVM');
      return;
    }
    expect(choice.accel).toBe('tcg');
  });
});
