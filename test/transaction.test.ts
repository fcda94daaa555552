// Transactions: an image changes completely or not at all, whatever is killed
// when. Fault injection runs a real guestsh writer (test/fixtures/tx-writer.mjs)
// in its own process group and SIGKILLs it, or its qemu, at random moments.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session, UsageError } from '../src/index.js';
import { recover, txFiles, txStatus } from '../src/runtime/session/transaction.js';
import { ext4Image, isAlive, isolatedTmpdir, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(async () => {
  // A killed writer's watchdog removes its run directory within one poll
  // (0.5 s) of noticing; give it a bounded moment before checking.
  for (let i = 0; i < 30 && tmp.leftovers().length; i++) await sleep(100);
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

const TRIALS = Number(process.env.GUESTSH_TX_TRIALS ?? 20);
// Each trial is a whole guestsh run (resume, writes, maybe a merge): seconds each.
const TRIAL_TIMEOUT_MS = scaled(TRIALS * 30_000);
const WRITER = join(import.meta.dirname, 'fixtures', 'tx-writer.mjs');
const CLI = join(import.meta.dirname, '..', 'bin', 'guestsh.js');
const pristine = ext4Image(join(tmp.dir, 'pristine.img'), 96, { 'keep.txt': 'original\n' });
let pristineHash: string;
beforeAll(async () => {
  pristineHash = await sha256(pristine);
});

function freshImage(name: string): string {
  const img = join(tmp.dir, name);
  copyFileSync(pristine, img);
  return img;
}

function nothingBeside(img: string): boolean {
  const f = txFiles(img);
  return !existsSync(f.lock) && !existsSync(f.overlay) && !existsSync(f.journal);
}

interface Writer {
  proc: ChildProcess;
  /** Resolves when the writer prints `marker` (rejects if it exits first). */
  reached: (marker: string) => Promise<void>;
  /** qemu's pid once the writer is writing; null if it died before launching. */
  qemuPid: Promise<number | null>;
  exited: Promise<number | null>;
}

function startWriter(img: string, mib: number): Writer {
  const proc = spawn('node', [WRITER, img, String(mib)], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: { marker: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.filter((x) => out.includes(`${x.marker}\n`))) w.resolve();
  });
  void exited.then(() => {
    for (const w of waiters) w.reject(new Error(`writer exited before ${w.marker}; output: ${out}; stderr: ${err}`));
  });
  const reached = (marker: string) =>
    out.includes(`${marker}\n`) ? Promise.resolve() : new Promise<void>((resolve, reject) => waiters.push({ marker, resolve, reject }));
  const qemuPid = Promise.race([
    reached('WRITING').then(() => Number(/QEMU (\d+)/.exec(out)![1]) as number | null),
    exited.then(() => {
      const m = /QEMU (\d+)/.exec(out);
      return m ? Number(m[1]) : null;
    }),
  ]);
  return { proc, reached, qemuPid, exited };
}

/** SIGKILLs the writer's whole process group (node and its qemu-img) and waits until all of it is gone. */
async function killGroup(w: Writer): Promise<void> {
  try {
    process.kill(-w.proc.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
  await w.exited;
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-w.proc.pid!, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
}

/** Waits (bounded) for the watchdog to take qemu down after its owner died. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100);
  return !isAlive(pid);
}

/** Opens the image the way the next guestsh run would; returns the notice it gave. */
async function reopen(img: string): Promise<string[]> {
  const s = new Session();
  const notices: string[] = [];
  s.on('notice', (n) => notices.push(n));
  await s.addDrive(img, { format: 'raw' });
  await s.close();
  return notices;
}

describe('transactions', () => {
  it('commits on shutdown and discards on close, leaving nothing beside the image', async () => {
    const img = freshImage('basic.img');
    const s = new Session();
    await s.addDrive(img, { format: 'raw' });
    await s.launch();
    await s.call('mount', ['/dev/sda', '/']);
    await s.call('write', ['/new.txt', 'committed\n']);
    // While the session runs, the image itself is untouched.
    expect(await sha256(img)).toBe(pristineHash);
    expect(existsSync(txFiles(img).overlay)).toBe(true);
    await s.shutdown();
    await s.close();
    expect(nothingBeside(img)).toBe(true);
    const committedHash = await sha256(img);
    expect(committedHash).not.toBe(pristineHash);

    const t = new Session();
    await t.addDrive(img, { format: 'raw' });
    await t.launch();
    await t.call('mount', ['/dev/sda', '/']);
    expect(await t.call('cat', ['/new.txt'])).toBe('committed\n');
    await t.call('write', ['/discarded.txt', 'never kept']);
    await t.close();
    expect(await sha256(img)).toBe(committedHash);
    expect(nothingBeside(img)).toBe(true);
  });

  it('refuses a second writer with the holder pid, while a reader works on its own view', async () => {
    const img = freshImage('two.img');
    const writer = new Session();
    await writer.addDrive(img, { format: 'raw' });
    const second = new Session();
    const err = await second.addDrive(img, { format: 'raw' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(
      `'${img}' is open for writing by guestsh (pid ${process.pid}); wait for it to finish or open the image with --ro`,
    );
    await second.close();
    // Another process is refused the same way, naming this process.
    let cliErr = '';
    try {
      execFileSync('node', [CLI, '-a', img, 'run', ':', 'list-devices'], { stdio: 'pipe' });
    } catch (e) {
      cliErr = String((e as { stderr: Buffer }).stderr);
    }
    expect(cliErr).toContain(`is open for writing by guestsh (pid ${process.pid})`);
    expect(await txStatus(img)).toEqual({ writerPid: process.pid, pendingOverlay: true, interruptedMerge: false });

    await writer.launch();
    await writer.call('mount', ['/dev/sda', '/']);
    await writer.call('write', ['/keep.txt', 'writer was here\n']);
    const reader = new Session();
    await reader.addDrive(img, { format: 'raw', readonly: true });
    await reader.launch();
    await reader.call('mount_ro', ['/dev/sda', '/']);
    expect(await reader.call('cat', ['/keep.txt'])).toBe('original\n');
    await reader.close();
    await writer.shutdown();
    await writer.close();
    expect(nothingBeside(img)).toBe(true);
  });

  it(`kill -9 of guestsh at random moments of a run never changes the image (${TRIALS} trials)`, async () => {
    const img = freshImage('killrun.img');
    // Calibrate: how long a run takes to reach its commit.
    const cal = startWriter(img, 8);
    const t0 = Date.now();
    await cal.reached('SHUTDOWN');
    const runMs = Date.now() - t0;
    await killGroup(cal);
    await recover(img);
    const outcomes: Record<string, number> = {};
    let duringRun = 0;
    for (let attempt = 0; duringRun < TRIALS && attempt < TRIALS * 3; attempt++) {
      copyFileSync(pristine, img);
      const w = startWriter(img, 8);
      await sleep(Math.floor(Math.random() * runMs));
      const reachedCommit = await Promise.race([w.reached('MERGING').then(() => true), sleep(0).then(() => false)]);
      await killGroup(w);
      const qemu = await w.qemuPid;
      if (qemu !== null) expect(await gone(qemu)).toBe(true);
      const notices = await reopen(img);
      const key = reachedCommit ? 'reached-commit' : notices.length ? 'abandoned-run-removed' : 'killed-before-writing';
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      if (!reachedCommit) {
        duringRun++;
        expect(await sha256(img)).toBe(pristineHash);
      }
      expect(nothingBeside(img)).toBe(true);
    }
    console.log(`kill during run: ${JSON.stringify(outcomes)}`);
    expect(duringRun).toBe(TRIALS);
  }, TRIAL_TIMEOUT_MS);

  it(`kill -9 during commit is rolled forward by the next open, to the uninterrupted result (${TRIALS} trials)`, async () => {
    const img = freshImage('killcommit.img');
    // Calibrate the window: from the commit's start to shutdown() returning.
    const cal = startWriter(img, 24);
    await cal.reached('MERGING');
    const m0 = Date.now();
    await cal.reached('DONE');
    let mergeMs = Math.max(20, Date.now() - m0);
    await cal.exited;
    const outcomes: Record<string, number> = {};
    let rolledForward = 0;
    for (let attempt = 0; rolledForward < TRIALS && attempt < TRIALS * 3; attempt++) {
      copyFileSync(pristine, img);
      const w = startWriter(img, 24);
      await w.reached('MERGING');
      await sleep(Math.floor(Math.random() * mergeMs));
      await killGroup(w);
      const f = txFiles(img);
      if (existsSync(f.journal) && !existsSync(f.overlay)) {
        // Killed after the merge, during its cleanup: the image is final already.
        const merged = await sha256(img);
        const notices = await reopen(img);
        expect(notices).toContain(`completed an interrupted commit of '${img}' first`);
        expect(await sha256(img)).toBe(merged);
        rolledForward++;
        outcomes['merged-cleanup-interrupted'] = (outcomes['merged-cleanup-interrupted'] ?? 0) + 1;
      } else if (existsSync(f.journal)) {
        // What an uninterrupted merge of this very overlay gives: the overlay
        // read over the image (clusters outside it were never touched).
        const expected = join(tmp.dir, 'expected.raw');
        execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', f.overlay, expected]);
        const notices = await reopen(img);
        expect(notices).toContain(`completed an interrupted commit of '${img}' first`);
        expect(await sha256(img)).toBe(await sha256(expected));
        rolledForward++;
        outcomes['rolled-forward'] = (outcomes['rolled-forward'] ?? 0) + 1;
      } else {
        const key = existsSync(f.overlay) ? 'killed-before-journal' : 'commit-had-finished';
        // The calibration run can be slower than the trials (a CI rehearsal saw 33 of 60 kills land
        // after the commit): aim the next kills earlier, so the trials keep hitting the merge.
        if (key === 'commit-had-finished') mergeMs = Math.max(20, mergeMs * 0.8);
        await reopen(img);
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        if (key === 'killed-before-journal') expect(await sha256(img)).toBe(pristineHash);
      }
      expect(nothingBeside(img)).toBe(true);
    }
    console.log(`kill during commit (window at the end ≈ ${Math.round(mergeMs)} ms): ${JSON.stringify(outcomes)}`);
    expect(rolledForward).toBe(TRIALS);
   }, TRIAL_TIMEOUT_MS);

  it(`qemu killed at random moments of a run leaves the image unchanged (${TRIALS} trials)`, async () => {
    const img = freshImage('killqemu.img');
    let failedRuns = 0;
    let tooLate = 0;
    for (let attempt = 0; failedRuns < TRIALS && attempt < TRIALS * 3; attempt++) {
      copyFileSync(pristine, img);
      const w = startWriter(img, 24);
      const qemu = (await w.qemuPid)!;
      await sleep(Math.floor(Math.random() * 800));
      const committing = await Promise.race([w.reached('SHUTDOWN').then(() => true), sleep(0).then(() => false)]);
      if (committing) {
        // Too late to be "during a run": the writes were done.
        tooLate++;
        await w.exited;
        await reopen(img);
        continue;
      }
      process.kill(qemu, 'SIGKILL');
      const code = await w.exited;
      expect(code).not.toBe(0);
      failedRuns++;
      expect(await sha256(img)).toBe(pristineHash);
      expect(nothingBeside(img)).toBe(true);
    }
    console.log(`qemu killed during run: ${failedRuns} runs failed cleanly with the image unchanged (${tooLate} kills came after the writes)`);
    expect(failedRuns).toBe(TRIALS);
  }, TRIAL_TIMEOUT_MS);
});
