// Batch benchmark: the standard library's sysprep over N copies of the
// Debian test guest with `guestsh batch` (local pool, default concurrency),
// against a shell loop of virt-sysprep over N identical copies. Each side is
// one CLI run from start to exit; rounds alternate (guestsh, then
// virt-sysprep) so machine load hits both alike. The result is checked in
// every copy afterwards (the log files sysprep removes are gone), so neither
// side is timed doing less. Prints wall times, images per minute and the
// guestsh/virt-sysprep ratio.
//
//   npx tsx bench/batch.ts [--images N] [--rounds R]

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from '../src/index.js';
import { ensureGuest } from '../testdata/index.js';
import { arg, CLI, LIBGUESTFS_ENV, timed } from './util.js';

const IMAGES = arg('--images', 6);
const ROUNDS = arg('--rounds', 1);
if (IMAGES < 6) throw new Error('--images: at least 6');

/** What both tools' default operations remove from the test guest, read back from each copy. */
async function check(images: string[], tool: string): Promise<void> {
  const s = new Session();
  try {
    for (const img of images) await s.addDrive(img, { readonly: true, format: 'qcow2' });
    await s.launch();
    for (const [i] of images.entries()) {
      await s.g.mountRo(`/dev/sd${String.fromCharCode(97 + i)}2`, '/');
      const left = [await s.g.exists('/var/log/dpkg.log'), await s.g.exists('/var/log/alternatives.log'), await s.g.exists('/var/log/wtmp')];
      if (left.some(Boolean)) throw new Error(`${tool} left log files in ${images[i]}: ${JSON.stringify(left)}`);
      await s.g.umountAll();
    }
  } finally {
    await s.close();
  }
}

const work = mkdtempSync(join(tmpdir(), 'guestsh-bench-batch-'));
try {
  const base = (await ensureGuest('debian')).qcow2;
  const copies = (set: string): string[] => {
    const dir = join(work, set);
    mkdirSync(dir);
    return Array.from({ length: IMAGES }, (_, i) => {
      const p = join(dir, `guest${i + 1}.qcow2`);
      execFileSync('cp', ['--sparse=always', base, p]);
      return p;
    });
  };
  // One untimed guestsh run first: it saves the booted appliance that later sessions resume,
  // as any second use on a machine would find it.
  const [warm] = copies('warm');
  await timed('node', [CLI, 'run', '-a', warm!, '-i', 'guestsh/sysprep'], process.env);

  const gs: number[] = [];
  const vs: number[] = [];
  let chosen = '';
  for (let r = 0; r < ROUNDS; r++) {
    const mine = copies(`gs${r}`);
    const job = join(work, `gs${r}`, 'job.yaml');
    writeFileSync(job, ['recipe: guestsh/sysprep', 'mount: inspect', 'images:', '  - path: "*.qcow2"', '    format: qcow2', ''].join('\n'));
    const g = await timed('node', [CLI, 'batch', job], process.env);
    chosen = g.stderr.match(/concurrency (.*)/)?.[1] ?? '?';
    gs.push(g.ms);
    await check(mine, 'guestsh batch');

    const theirs = copies(`vs${r}`);
    const loop = `for f in "$@"; do virt-sysprep -q --format qcow2 -a "$f" || exit 1; done`;
    vs.push((await timed('sh', ['-c', loop, 'sh', ...theirs], LIBGUESTFS_ENV)).ms);
    await check(theirs, 'virt-sysprep');
    console.log(`round ${r + 1}: guestsh batch ${(gs[r]! / 1000).toFixed(1)} s, virt-sysprep loop ${(vs[r]! / 1000).toFixed(1)} s`);
  }
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const [g, v] = [sum(gs) / gs.length, sum(vs) / vs.length];
  const perMinute = (ms: number): string => ((IMAGES * 60_000) / ms).toFixed(2);
  console.log(`guestsh batch concurrency: ${chosen}`);
  console.log('');
  console.log('| measure | virt-sysprep loop | guestsh batch | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| sysprep of ${IMAGES} Debian images, wall time (${ROUNDS === 1 ? 'one run' : `mean of ${ROUNDS}`}) | ${(v / 1000).toFixed(1)} s | ${(g / 1000).toFixed(1)} s | ${(g / v).toFixed(2)} |`);
  console.log(`| images per minute | ${perMinute(v)} | ${perMinute(g)} | |`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
