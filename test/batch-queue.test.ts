// `guestsh batch --queue` and `guestsh worker` with a real Redis (Debian's
// redis-server on a loopback port of this file's own) and two real worker
// processes: every image done exactly once; a worker killed with SIGKILL
// mid-job, its job handed to the other by BullMQ's stalled check, the
// abandoned overlay removed and the image committed once; an image missing
// on the worker's side failing its job with a clear error; a resubmission
// adding no job.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/runtime/session/session.js';
import { txFiles } from '../src/runtime/session/transaction.js';
import { CLI, ext4Image, isAlive, isolatedTmpdir, processes, qemuUnder } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
const dir = join(tmp.dir, 'queued');
const imgs = join(dir, 'images');
const names = ['a-slow.img', 'b.img', 'c.img', 'd.img'];
const images = names.map((n) => join(imgs, n));
const gone = join(imgs, 'gone.img');

// Appends one line per run; the slow image first makes enough calls for a
// worker to be killed in the middle of it.
const RECIPE = `export default async ({ g, params }: any) => {
  for (let i = 0; i < Number(params.slow ?? 0); i++) await g.exists('/batch-runs');
  await g.writeAppend('/batch-runs', 'q\\n');
  return [{ path: '/batch-runs' }];
};
`;

let port = 0;
let redis: ChildProcess | null = null;
const url = (): string => `redis://127.0.0.1:${port}`;
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const p = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return p;
}

interface Running {
  p: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], env: NodeJS.ProcessEnv = process.env): Running {
  const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : null))));
  return { p, out: () => out, err: () => err, exited };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = Date.now() + scaled(ms);
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The node process doing a CLI's work: bin/guestsh.js's child without the startup snapshot. */
function workerOf(r: Running): number {
  const child = processes().find((x) => x.ppid === r.p.pid && x.cmdline.includes('--no-node-snapshot'));
  if (!child) throw new Error('the worker process was not found');
  return child.pid;
}

async function runsIn(list: string[]): Promise<string[]> {
  const s = new Session();
  try {
    for (const img of list) await s.g.addDrive(img, { readonly: true, format: 'raw' });
    await s.launch();
    const out: string[] = [];
    for (const [i] of list.entries()) {
      await s.g.mountRo(`/dev/sd${String.fromCharCode(97 + i)}`, '/');
      out.push(await s.g.cat('/batch-runs'));
      await s.g.umountAll();
    }
    return out;
  } finally {
    await s.close();
  }
}

function job(name: string, extra: string[]): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    ['recipe: mark.gfs.ts', 'mount: ["/dev/sda:/"]', 'images:', '  - path: images/a-slow.img', '    format: raw', '    params: { slow: 4000 }', '  - path: images/[bcd].img', '    format: raw', ...extra, ''].join('\n'),
  );
  return file;
}

beforeAll(async () => {
  mkdirSync(imgs, { recursive: true });
  for (const img of [...images, gone]) ext4Image(img, 16, {});
  writeFileSync(join(dir, 'mark.gfs.ts'), RECIPE);
  port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const q = new Queue('guestsh-batch', { connection: { host: '127.0.0.1', port } });
  await until('redis', () => q.waitUntilReady().then(() => true, () => false), 10_000);
  await q.close();
}, scaled(120_000));

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.pid && isAlive(c.pid)) c.kill('SIGKILL');
  redis?.kill('SIGTERM');
  // The SIGKILLed worker's run directory is the watchdog's to remove, once its qemu has gone (it polls).
  await until('qemu and run directories to go', () => qemuUnder(tmp.dir).length === 0 && tmp.leftovers().length === 0, scaled(30_000)).catch(() => undefined);
  const qemus = qemuUnder(tmp.dir);
  const left = tmp.leftovers();
  tmp.restore();
  expect(qemus).toEqual([]);
  expect(left).toEqual([]);
}, scaled(60_000));

describe('guestsh batch --queue, guestsh worker', () => {
  it('two workers: each image once, a SIGKILLed worker\'s job retried by the other, a missing image a clear failure, a resubmission adding nothing', async () => {
    const queue = new Queue('guestsh-batch', { connection: { host: '127.0.0.1', port } });
    try {
      const first = job('fleet.yaml', ['  - path: images/gone.img', '    format: raw']);
      const submit = start(['batch', first, '--queue', url()]);
      // All five are queued before any worker runs; then the last one disappears from the workers' view.
      await until('five queued jobs', async () => (await queue.getJobCounts('wait')).wait === 5);
      renameSync(gone, `${gone}.moved`);

      const env = { ...process.env, GUESTSH_QUEUE_STALL_MS: String(scaled(5000)) };
      const w1 = start(['worker', '--queue', url()], env);
      const w2 = start(['worker', '--queue', url()], env);
      const slow = images[0]!;
      await until('the slow image to start', () => `${w1.err()}${w2.err()}`.includes(`${slow}: started`));
      const victim = w1.err().includes(`${slow}: started`) ? w1 : w2;
      const survivor = victim === w1 ? w2 : w1;
      await until('the slow image to be opened for writing', () => existsSync(txFiles(slow).overlay));
      process.kill(workerOf(victim), 'SIGKILL');
      await victim.exited;

      expect(await submit.exited).toBe(1);
      const lines = submit.err().split('\n');
      for (const img of images) expect(lines).toContain(`guestsh: batch: ${img}: ok, committed, 1 changes (${lines.find((l) => l.startsWith(`guestsh: batch: ${img}: ok, committed`))?.match(/\(([\d.]+ s)\)/)?.[1]})`);
      expect(submit.err()).toContain(`guestsh: batch: ${gone}: FAILED: image '${gone}' does not exist on `);
      expect(submit.out()).toMatch(/^batch: 5 images: 4 ok \(4 committed, 0 skipped as unchanged\), 1 failed; /);
      // The survivor took the dead worker's job over, and found (and removed) the overlay it left.
      expect(survivor.err()).toContain(`guestsh: worker: ${slow}: removed the uncommitted changes an interrupted run left beside '${slow}'`);
      expect(survivor.err()).toContain(`guestsh: worker: ${slow}: ok`);

      // Committed exactly once each, nothing left beside the images.
      expect(await runsIn(images)).toEqual(images.map(() => 'q\n'));
      expect(readdirSync(imgs).filter((f) => f.includes('.guestsh-'))).toEqual([]);

      // The same images, recipe and params submitted again (from another job file): all done, no job added.
      const counts = await queue.getJobCounts('completed', 'failed', 'wait', 'active', 'delayed');
      const again = start(['batch', job('again.yaml', []), '--queue', url()]);
      expect(await again.exited).toBe(0);
      expect(again.out()).toMatch(/^batch: 4 images: 4 ok \(0 committed, 4 skipped as unchanged\), 0 failed; /);
      expect(await queue.getJobCounts('completed', 'failed', 'wait', 'active', 'delayed')).toEqual(counts);

      survivor.p.kill('SIGINT');
      expect(await survivor.exited).toBe(130);
    } finally {
      await queue.close();
    }
  });
});
