// Killing guestsh: `guestsh run` as a user starts it (bin/guestsh.js, which
// re-runs node for isolated-vm and waits for that worker), killed by
// SIGKILL, SIGTERM, SIGINT or SIGHUP, and `npx guestsh run` killed by
// SIGTERM. A kill that came before the commit began leaves the image
// untouched; once the merge has begun it completes; either way nothing is
// left: no lock, no overlay, no run or output directory, no qemu, no worker.
//
// The recipe writes fixed bytes to a raw disk with pwrite_device, so the
// committed image is known exactly beforehand. The worker says which way it
// went ("stopped by SIG… before the commit began" / "… after the commit had
// begun; it was completed"), and the image must agree with it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, watch, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { txFiles } from '../src/runtime/session/transaction.js';
import { CLI, isolatedTmpdir, processes, qemuUnder, rawDisk, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

const REPO = join(import.meta.dirname, '..');
const MIB = 1024 * 1024;
const BLOCK = 64 * 1024;
// Where the recipe writes, and what: a letter per block, so a torn write shows.
const BLOCKS: [number, string][] = [
  [0, 'A'],
  [MIB + 4096, 'B'],
  [3 * MIB, 'C'],
  [8 * MIB - BLOCK, 'D'],
];
const pristine = rawDisk(join(tmp.dir, 'pristine.img'), 8);
const img = join(tmp.dir, 'disk.img');
const RECIPE = join(tmp.dir, 'blocks.gfs.ts');
writeFileSync(
  RECIPE,
  `// Writes each block; with --param hold=N, says HOLDING after the first and then waits N s in the guest.
export default async ({ g, params, log }: any) => {
  for (const [i, [offset, letter]] of JSON.parse(params.blocks).entries()) {
    const n = await g.pwriteDevice('/dev/sda', letter.repeat(${BLOCK}), offset);
    if (n !== ${BLOCK}) throw new Error('short write: ' + n);
    if (i === 0 && params.hold) {
      log('HOLDING');
      await g.sleep(Number(params.hold));
    }
  }
};
`,
);

const committed = (() => {
  const b = Buffer.alloc(8 * MIB);
  for (const [offset, letter] of BLOCKS) b.fill(letter, offset, offset + BLOCK);
  return createHash('sha256').update(b).digest('hex');
})();
let pristineHash = '';

type Via = 'guestsh' | 'npx';

interface Run {
  proc: ChildProcess;
  out: string;
  err: string;
  /** All of it has ended: the process killed, and whoever held its output (the worker). */
  closed: Promise<number | null>;
  startedAt: number;
}

function start(via: Via, hold?: number): Run {
  const args = ['run', '--format', 'raw', '-a', img, RECIPE, '--param', `blocks=${JSON.stringify(BLOCKS)}`, ...(hold ? ['--param', `hold=${hold}`] : [])];
  const proc = via === 'guestsh'
    ? spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('npx', ['guestsh', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const run: Run = { proc, out: '', err: '', closed: new Promise((resolve) => proc.on('close', (code) => resolve(code))), startedAt: Date.now() };
  proc.stdout!.on('data', (d: Buffer) => (run.out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (run.err += d.toString()));
  return run;
}

/** The re-executed worker of the run on `img` (it alone names the image with --no-node-snapshot). */
function worker(): { pid: number; state: string } | undefined {
  return processes().find((p) => p.cmdline.includes('--no-node-snapshot') && p.cmdline.includes(img));
}

async function until(what: string, done: () => boolean, boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`still waiting after ${boundMs} ms for ${what}`);
    await sleep(20);
  }
}

function nothingBeside(): boolean {
  const f = txFiles(img);
  return !existsSync(f.lock) && !existsSync(f.overlay) && !existsSync(f.journal);
}

interface Outcome {
  /** The worker's own account: stopped before the commit, stopped during it (completed), or none (it never saw a signal). */
  said: 'before-commit' | 'commit-completed' | 'nothing';
  image: 'pristine' | 'committed' | 'other';
  code: number | null;
}

/** Waits until the run and all it started are gone (bounded: a live worker after the bound fails the test), then reads the image. */
async function settle(run: Run, boundMs: number): Promise<Outcome> {
  const code = await Promise.race([run.closed, sleep(boundMs).then(() => 'open' as const)]);
  if (code === 'open') throw new Error(`the run still held its output ${boundMs} ms after the kill:\n${run.out}\n${run.err}`);
  // The watchdogs poll every 0.5 s; a worker that cleaned up has ended them already.
  // The bound is the parallel suite's, not a lone run's: a stopped worker tidies up while other files' appliances share the cores.
  await until('the worker, its qemu and its temp directories to go', () => !worker() && qemuUnder(tmp.dir).length === 0 && tmp.leftovers().length === 0, scaled(30_000));
  const h = await sha256(img);
  const said = /RunStopped: stopped by SIG\w+ before the commit began/.test(run.err)
    ? 'before-commit'
    : /stopped by SIG\w+ after the commit had begun; it was completed/.test(run.err)
      ? 'commit-completed'
      : 'nothing';
  return { said, image: h === pristineHash ? 'pristine' : h === committed ? 'committed' : 'other', code };
}

/** An uninterrupted run: how long it takes, and when its qemu appears. */
async function calibrate(via: Via): Promise<{ runMs: number; qemuAtMs: number }> {
  copyFileSync(pristine, img);
  const run = start(via);
  let qemuAt = 0;
  const watch = setInterval(() => void (qemuAt ||= qemuUnder(tmp.dir).length ? Date.now() : 0), 10);
  const code = await run.closed;
  clearInterval(watch);
  expect(code, run.err).toBe(0);
  expect(run.out).toContain('changes committed');
  expect(await sha256(img)).toBe(committed);
  return { runMs: Date.now() - run.startedAt, qemuAtMs: qemuAt - run.startedAt };
}

beforeAll(async () => {
  pristineHash = await sha256(pristine);
});

describe('killing guestsh while a run holds (deterministic: the recipe waits in the guest until killed)', () => {
  it('kill -9 of guestsh: its worker notices at once, stops, discards, and leaves nothing', async () => {
    copyFileSync(pristine, img);
    const run = start('guestsh', 60);
    await until('HOLDING', () => run.err.includes('HOLDING'), scaled(120_000));
    process.kill(run.proc.pid!, 'SIGKILL');
    const o = await settle(run, scaled(30_000));
    expect(run.err).toContain('RunStopped: stopped by SIGHUP before the commit began');
    expect(o).toMatchObject({ said: 'before-commit', image: 'pristine' });
    expect(nothingBeside()).toBe(true);
  });

  it('SIGTERM and SIGINT to guestsh: the run stops, exits 128+N, discards, and leaves nothing', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      copyFileSync(pristine, img);
      const run = start('guestsh', 60);
      await until('HOLDING', () => run.err.includes('HOLDING'), scaled(120_000));
      process.kill(run.proc.pid!, sig);
      const o = await settle(run, scaled(30_000));
      expect(run.err).toContain(`RunStopped: stopped by ${sig} before the commit began`);
      expect(o).toEqual({ said: 'before-commit', image: 'pristine', code: 128 + constants.signals[sig] });
      expect(nothingBeside()).toBe(true);
    }
  });

  it("SIGTERM to npx guestsh run: npm's shell dies of it without passing it on; guestsh, orphaned, stops all the same", async () => {
    copyFileSync(pristine, img);
    const run = start('npx', 60);
    await until('HOLDING', () => run.err.includes('HOLDING'), scaled(120_000));
    process.kill(run.proc.pid!, 'SIGTERM');
    const o = await settle(run, scaled(30_000));
    expect(run.err).toContain('RunStopped: stopped by SIGHUP before the commit began');
    expect(o).toMatchObject({ said: 'before-commit', image: 'pristine' });
    expect(nothingBeside()).toBe(true);
  });
});

describe('killing guestsh once the merge has begun (deterministic: the kill comes when the journal appears)', () => {
  it('kill -9 and SIGTERM of guestsh during the merge: it completes, says so, and leaves nothing', async () => {
    const journal = txFiles(img).journal;
    for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
      copyFileSync(pristine, img);
      // The journal exists exactly while a merge is under way (written once the commit has begun).
      const watcher = watch(tmp.dir);
      let run: Run | null = null;
      let killed = false;
      watcher.on('change', () => {
        if (killed || !run || !existsSync(journal)) return;
        killed = true;
        process.kill(run.proc.pid!, sig);
      });
      run = start('guestsh');
      const o = await settle(run, scaled(60_000));
      watcher.close();
      expect(killed).toBe(true);
      expect(run.err).toContain(`stopped by ${sig === 'SIGKILL' ? 'SIGHUP' : sig} after the commit had begun; it was completed`);
      expect(o).toMatchObject({ said: 'commit-completed', image: 'committed' });
      if (sig === 'SIGTERM') expect(o.code).toBe(128 + constants.signals.SIGTERM);
      expect(nothingBeside()).toBe(true);
    }
  });
});

describe('the shell', () => {
  it('SIGTERM during a command: exit 143, the image untouched, nothing left', async () => {
    copyFileSync(pristine, img);
    const proc = spawn(process.execPath, [CLI, '--format=raw', '-a', img, 'run', ':', 'pwrite-device', '/dev/sda', 'Z'.repeat(BLOCK), '0', ':', 'sleep', '60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { proc, out: '', err: '', closed: new Promise((resolve) => proc.on('close', (code) => resolve(code))), startedAt: Date.now() };
    proc.stdout!.on('data', (d: Buffer) => (run.out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (run.err += d.toString()));
    // pwrite-device prints how much it wrote; the sleep comes next.
    await until('the write', () => run.out.includes(`${BLOCK}\n`), scaled(120_000));
    process.kill(proc.pid!, 'SIGTERM');
    const code = await run.closed;
    expect(code).toBe(143);
    await until('its qemu and temp directories to go', () => qemuUnder(tmp.dir).length === 0 && tmp.leftovers().length === 0, scaled(30_000));
    expect(await sha256(img)).toBe(pristineHash);
    expect(nothingBeside()).toBe(true);
  });
});

describe('killing guestsh at random moments', () => {
  const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const RUN_TRIALS = 16;
  const EARLY_TRIALS = 10;
  const NPX_TRIALS = 3;

  it(`${RUN_TRIALS} kills anywhere in a run, ${EARLY_TRIALS} before its qemu starts, ${NPX_TRIALS} of npx: never a commit the kill came before`, async () => {
    const direct = await calibrate('guestsh');
    const viaNpx = await calibrate('npx');
    const tally: Record<string, number> = {};
    const trials: { via: Via; sig: NodeJS.Signals; within: number }[] = [
      ...Array.from({ length: RUN_TRIALS }, (_, i) => ({ via: 'guestsh' as Via, sig: SIGNALS[i % SIGNALS.length]!, within: direct.runMs })),
      ...Array.from({ length: EARLY_TRIALS }, (_, i) => ({ via: 'guestsh' as Via, sig: SIGNALS[i % 2]!, within: direct.qemuAtMs })),
      ...Array.from({ length: NPX_TRIALS }, () => ({ via: 'npx' as Via, sig: 'SIGTERM' as NodeJS.Signals, within: viaNpx.runMs })),
    ];
    for (const t of trials) {
      copyFileSync(pristine, img);
      const run = start(t.via);
      await sleep(Math.random() * t.within);
      // What the kill meets: a worker still running (not a zombie) that has not yet printed its result.
      const w = worker();
      const metRunningWorker = w !== undefined && w.state !== 'Z' && !run.out.includes('recipe succeeded');
      try {
        process.kill(run.proc.pid!, t.sig);
      } catch {
        // it had ended: the run finished before the kill
      }
      const o = await settle(run, Math.max(60_000, 10 * t.within));
      const key = `${t.via} ${t.sig}: ${o.said}, ${o.image}`;
      tally[key] = (tally[key] ?? 0) + 1;
      const context = `${key}; stdout:\n${run.out}\nstderr:\n${run.err}`;
      expect(nothingBeside(), context).toBe(true);
      expect(o.image, context).not.toBe('other');
      if (o.said === 'before-commit') expect(o.image, context).toBe('pristine');
      if (o.said === 'commit-completed') expect(o.image, context).toBe('committed');
      if (o.said === 'nothing') {
        // No account: it died of the signal before its handlers existed (nothing done yet),
        // or the run had ended before the kill; never a run that went on past the kill.
        if (o.image === 'committed') expect(metRunningWorker, context).toBe(false);
        else expect(run.out, context).not.toContain('recipe succeeded');
      }
      if (t.via === 'guestsh' && t.sig !== 'SIGKILL' && o.said !== 'nothing') expect(o.code, context).toBe(128 + constants.signals[t.sig]);
    }
    console.log(
      `kill trials (run ≈ ${direct.runMs} ms, qemu after ≈ ${direct.qemuAtMs} ms; npx run ≈ ${viaNpx.runMs} ms): ${trials.length} trials\n` +
        Object.entries(tally).map(([k, n]) => `  ${n} × ${k}`).join('\n'),
    );
    expect(Object.values(tally).reduce((a, b) => a + b, 0)).toBe(RUN_TRIALS + EARLY_TRIALS + NPX_TRIALS);
  }, scaled(1_800_000));
});

describe('the session decides at the merge', () => {
  it('a stop before the merge begins: shutdown() commits nothing, close() discards', async () => {
    copyFileSync(pristine, img);
    const s = new Session();
    await s.addDrive(img, { format: 'raw' });
    await s.launch();
    await s.g.pwriteDevice('/dev/sda', 'Z'.repeat(BLOCK), 0);
    let merges = 0;
    s.on('commit', () => merges++);
    const stop = new AbortController();
    // Aborted while shutdown() syncs and stops qemu, before its merge.
    const ending = s.shutdown({ signal: stop.signal });
    stop.abort(new Error('stopped by the test'));
    await expect(ending).rejects.toThrow('stopped by the test');
    await s.close();
    expect(merges).toBe(0);
    expect(await sha256(img)).toBe(pristineHash);
    expect(nothingBeside()).toBe(true);
  });

  it('close() called once the merge has begun waits for it: the image is committed and nothing is left', async () => {
    copyFileSync(pristine, img);
    const s = new Session();
    await s.addDrive(img, { format: 'raw' });
    await s.launch();
    for (const [offset, letter] of BLOCKS) await s.g.pwriteDevice('/dev/sda', letter.repeat(BLOCK), offset);
    let closed: Promise<void> | null = null;
    s.on('commit', () => (closed = s.close()));
    const ending = s.shutdown();
    await new Promise<void>((resolve) => s.once('commit', () => resolve()));
    await closed;
    // The merge is over when close() returns, not merely begun.
    expect(nothingBeside()).toBe(true);
    expect(await sha256(img)).toBe(committed);
    await ending;
  });
});
