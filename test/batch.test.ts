// `guestsh batch JOB.yaml`, the local pool, for real: copies of the Debian
// test guest and small blank ext4 disks, a tiny recipe that appends a line
// per run (so a run done twice shows), one image made to fail. Then the
// re-run that skips what is done without launching anything (no qemu on its
// PATH), and a batch killed with SIGKILL half-way whose re-run does exactly
// the images it had not finished.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGuest } from '../testdata/index.js';
import { Session } from '../src/runtime/session/session.js';
import { CLI, ext4Image, guestsh, isolatedTmpdir, processes, qemuUnder, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';
import type { ImageResult } from '../src/runtime/batch/pool.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  const left = tmp.leftovers();
  const qemus = qemuUnder(tmp.dir);
  tmp.restore();
  expect(left).toEqual([]);
  expect(qemus).toEqual([]);
});

const dir = join(tmp.dir, 'fleet');
const imgs = join(dir, 'images');
const debian = ['deb1.img', 'deb2.img', 'deb3.img'].map((n) => join(imgs, n));
const blank = ['blank1.img', 'blank2.img'].map((n) => join(imgs, n));
const all = [...debian, ...blank].sort();
const failing = debian[1]!;

// Mounts the guest's last ext4 filesystem (Debian's root, a blank disk's only
// one), appends a line naming the run's tag, and fails if asked to, after
// writing: the failing image must still be left untouched.
const RECIPE = `export default async ({ g, params }: any) => {
  const fss = await g.listFilesystems();
  const dev = Object.keys(fss).filter((d) => fss[d] === 'ext4').sort().pop();
  await g.mount(dev, '/');
  await g.writeAppend('/batch-runs', params.tag + '\\n');
  if (params.fail === 'yes') throw new Error('this image fails on purpose');
  return [{ path: '/batch-runs' }];
};
`;

function job(name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** A line of the results file. */
type Line = ImageResult;

const results = (file: string): Line[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line)
    .sort((a, b) => (a.image < b.image ? -1 : 1));

/** What each image's /batch-runs holds, read in one read-only session. */
async function runsIn(images: string[]): Promise<Record<string, string>> {
  const s = new Session();
  try {
    for (const img of images) await s.g.addDrive(img, { readonly: true, format: 'raw' });
    await s.launch();
    const out: Record<string, string> = {};
    const fss = await s.g.listFilesystems();
    for (const [i, img] of images.entries()) {
      const letter = String.fromCharCode(97 + i);
      const dev = Object.keys(fss)
        .filter((d) => fss[d] === 'ext4' && d.startsWith(`/dev/sd${letter}`))
        .sort()
        .pop()!;
      await s.g.mountRo(dev, '/');
      out[img] = (await s.g.exists('/batch-runs')) ? await s.g.cat('/batch-runs') : '';
      await s.g.umountAll();
    }
    return out;
  } finally {
    await s.close();
  }
}

/** No transaction file is left beside any image: no overlay, lock note or journal. */
function txLeftovers(): string[] {
  return readdirSync(imgs).filter((f) => f.includes('.guestsh-'));
}

beforeAll(async () => {
  mkdirSync(imgs, { recursive: true });
  const base = (await ensureGuest('debian')).raw;
  for (const d of debian) copyFileSync(base, d);
  for (const b of blank) ext4Image(b, 16, { 'readme.txt': 'blank\n' });
  writeFileSync(join(dir, 'mark.gfs.ts'), RECIPE);
}, scaled(600_000));

describe('guestsh batch (local pool)', () => {
  it('refuses a bad job with its line and column, exit 2, before touching anything', async () => {
    const bad = job('bad.yaml', ['recipe: mark.gfs.ts', 'images:', '  - images/*.img', '  - images/deb1.img']);
    const r = await guestsh(['batch', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`guestsh: error: ${bad}:4:5: 'images/deb1.img' is the same file as 'images/deb1.img' (line 3): an image may appear once in a job\n`);
    expect(existsSync(join(dir, 'bad.results.jsonl'))).toBe(false);
  });

  let afterFirst: Record<string, string> = {};

  it('runs five images two at a time: the good ones committed, the failing one byte-identical, results right, exit 1', async () => {
    const before = Object.fromEntries(await Promise.all(all.map(async (i) => [i, await sha256(i)] as const)));
    const file = job('first.yaml', [
      'recipe: mark.gfs.ts',
      'params: { tag: first }',
      'mount: none',
      'images:',
      '  - path: images/deb*.img',
      '    exclude: [images/deb2.img]',
      '    format: raw',
      '  - path: images/deb2.img',
      '    format: raw',
      '    params: { fail: "yes" }',
      '  - path: images/blank*.img',
      '    format: raw',
    ]);
    const r = await guestsh(['batch', file]);
    expect(r.stderr).toMatch(/guestsh: batch: concurrency [12] at once \(\d+ CPUs; /);
    expect(r.stdout).toBe(`batch: 5 images: 4 ok (4 committed, 0 skipped as unchanged), 1 failed; ${r.stdout.match(/; ([\d.]+ s);/)![1]}; results in ${join(dir, 'first.results.jsonl')}\n`);
    expect(r.code).toBe(1);

    const lines = results(join(dir, 'first.results.jsonl'));
    expect(lines.map((l) => l.image)).toEqual(all);
    for (const l of lines) {
      if (l.image === failing) {
        expect(l).toMatchObject({ ok: false, committed: false, skipped: false, changes: null, attempts: 1 });
        expect(l.error).toMatch(/this image fails on purpose/);
      } else {
        expect(l).toMatchObject({ ok: true, committed: true, skipped: false, changes: 1, error: null, attempts: 1 });
      }
    }
    expect(await sha256(failing)).toBe(before[failing]);
    for (const i of all.filter((x) => x !== failing)) expect(await sha256(i)).not.toBe(before[i]);
    afterFirst = Object.fromEntries(await Promise.all(all.map(async (i) => [i, await sha256(i)] as const)));
    const runs = await runsIn(all);
    expect(runs).toEqual(Object.fromEntries(all.map((i) => [i, i === failing ? '' : 'first\n'])));
    expect(txLeftovers()).toEqual([]);
  });

  it('re-run: the finished images are skipped without an appliance (no qemu on PATH), the failed one is tried again', async () => {
    const file = join(dir, 'first.yaml');
    // A PATH with node and nothing else: no qemu, no qemu-img, no supermin.
    const bin = join(tmp.dir, 'only-node');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = await guestsh(['batch', file], { ...process.env, PATH: bin });
    expect(r.code).toBe(1);
    const lines = results(join(dir, 'first.results.jsonl'));
    for (const l of lines) {
      if (l.image === failing) expect(l).toMatchObject({ ok: false, skipped: false, attempts: 1 });
      else expect(l).toMatchObject({ ok: true, committed: false, skipped: true, attempts: 0, error: null });
    }
    for (const i of all.filter((x) => x !== failing)) expect(r.stderr).toContain(`guestsh: batch: ${i}: skipped: unchanged since its last run (fingerprint matches)\n`);
    expect(r.stdout).toMatch(/^batch: 5 images: 4 ok \(0 committed, 4 skipped as unchanged\), 1 failed; /);
    for (const i of all) expect(await sha256(i)).toBe(afterFirst[i]);
    expect(txLeftovers()).toEqual([]);
  });

  it('killed with SIGKILL half-way, the re-run finishes exactly the images that had not finished', async () => {
    const file = job('second.yaml', ['recipe: mark.gfs.ts', 'params: { tag: second }', 'mount: none', 'concurrency: 2', 'images:', '  - path: images/*.img', '    format: raw']);
    const resultsFile = join(dir, 'second.results.jsonl');
    const p = spawn(process.execPath, [CLI, 'batch', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    // The batch itself is bin/guestsh.js's child (node without its snapshot): that is the one killed.
    const deadline = Date.now() + scaled(120_000);
    const finished = (): number => (existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).length : 0);
    while (finished() < 1) {
      if (Date.now() > deadline) throw new Error(`no image finished in time: ${stderr}`);
      await sleep(50);
    }
    const worker = processes().find((x) => x.ppid === p.pid && x.cmdline.includes('--no-node-snapshot'));
    expect(worker).toBeDefined();
    process.kill(worker!.pid, 'SIGKILL');
    await exited;
    const doneBefore = results(resultsFile).map((l) => l.image);
    expect(doneBefore.length).toBeGreaterThanOrEqual(1);
    expect(doneBefore.length).toBeLessThan(5);

    // Whatever the killed run left (its qemu is ended by its watchdog) the next open clears.
    const again = await guestsh(['batch', file]);
    expect(again.code).toBe(0);
    const lines = results(resultsFile);
    expect(lines.map((l) => l.image)).toEqual(all);
    for (const l of lines) {
      if (doneBefore.includes(l.image)) expect(l).toMatchObject({ ok: true, skipped: true, committed: false, changes: 0 });
      // The rest run now, but for one whose commit the kill came too late to stop: that one is done, and said so.
      else if (l.skipped) expect(again.stderr).toContain(`guestsh: ${l.image}: its commit had landed when the last batch stopped: done then\n`);
      else expect(l).toMatchObject({ ok: true, committed: true, changes: 1 });
    }
    // Each image ran the second job exactly once, as an uninterrupted batch would have left it.
    expect(await runsIn(all)).toEqual(Object.fromEntries(all.map((i) => [i, i === failing ? 'second\n' : 'first\nsecond\n'])));
    expect(txLeftovers()).toEqual([]);
    expect(existsSync(`${resultsFile}.output`)).toBe(false);
  });
});
