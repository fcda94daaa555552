// Packer benchmark: scripts-examples/packer/sysprep-image.pkr.hcl (null
// builder, artifice, sysprep in a shell-local post-processor, checksum,
// manifest) run by the real packer, once with guestsh in the shell-local
// slot as the template has it, once with virt-sysprep in that same slot
// (the template's text with only that line replaced). Each run gets a fresh
// copy of the Debian test guest and its own directory; runs alternate so
// machine load hits both alike. Afterwards each image is checked for what
// both tools' default operations remove, so neither is timed doing less.
// Prints packer start → exit per run, medians and the guestsh/virt-sysprep ratio.
//
//   npx tsx bench/packer.ts [--runs N]

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../src/runtime/cache.js';
import { ensureGuest } from '../testdata/index.js';
import { arg, CLI, LIBGUESTFS_ENV, median, readGuest } from './util.js';

const RUNS = arg('--runs', 3);
const TEMPLATE = join(import.meta.dirname, '..', 'scripts-examples', 'packer', 'sysprep-image.pkr.hcl');
/** Files the Debian guest has that both tools' default operations remove (logfiles, passwd-backups). */
const REMOVED = ['/var/log/dpkg.log', '/etc/passwd-', '/etc/shadow-'];

function packer(dir: string, template: string, image: string): Promise<number> {
  const env = {
    ...LIBGUESTFS_ENV,
    HOME: join(dir, 'home'),
    PACKER_CACHE_DIR: join(dir, 'packer-cache'),
    CHECKPOINT_DISABLE: '1',
    GUESTSH_CACHE: cacheRoot(),
  };
  mkdirSync(env.HOME, { recursive: true });
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn('packer', ['build', '-color=false', '-var', `image=${image}`, '-var', `guestsh=node ${CLI}`, template], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      if (code !== 0) reject(new Error(`packer build ${template} failed (${code}):\n${out.trim()}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

async function check(image: string, tool: string): Promise<void> {
  await readGuest(image, async (g) => {
    for (const f of REMOVED) if (await g.exists(f)) throw new Error(`${tool} left ${f} in ${image}`);
  });
  const [hash] = readFileSync(join(image, '..', 'image.sha256'), 'utf8').split(/\s+/);
  const actual = execFileSync('sha256sum', [image], { encoding: 'utf8' }).split(' ')[0];
  if (hash !== actual) throw new Error(`${tool}: the checksum file does not match the image`);
}

const work = mkdtempSync(join(tmpdir(), 'guestsh-bench-'));
try {
  const base = (await ensureGuest('debian')).qcow2;
  const guestshLine = /inline = \["\$\{var\.guestsh\} run --packer[^\n]*\]/;
  const text = readFileSync(TEMPLATE, 'utf8');
  if (!guestshLine.test(text)) throw new Error(`${TEMPLATE}: its guestsh shell-local line is not where the bench expects it`);
  const virtSysprep = join(work, 'virt-sysprep.pkr.hcl');
  writeFileSync(virtSysprep, text.replace(guestshLine, 'inline = ["virt-sysprep -q -a \'${var.image}\'"]'));

  let n = 0;
  const fresh = (): { dir: string; image: string } => {
    const dir = join(work, `run-${++n}`);
    mkdirSync(dir);
    const image = join(dir, 'disk.qcow2');
    execFileSync('cp', ['--sparse=always', base, image]);
    return { dir, image };
  };
  // One untimed guestsh run first: it saves the booted appliance later sessions resume, as any second use on a machine finds it.
  {
    const { dir, image } = fresh();
    await packer(dir, TEMPLATE, image);
  }
  const vs: number[] = [];
  const gs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const a = fresh();
    vs.push(await packer(a.dir, virtSysprep, a.image));
    await check(a.image, 'virt-sysprep');
    const b = fresh();
    gs.push(await packer(b.dir, TEMPLATE, b.image));
    await check(b.image, 'guestsh');
    console.log(`run ${i + 1}: packer + virt-sysprep ${(vs[i]! / 1000).toFixed(2)} s, packer + guestsh ${(gs[i]! / 1000).toFixed(2)} s`);
  }
  const [mv, mg] = [median(vs), median(gs)];
  console.log('');
  console.log('| measure | virt-sysprep | guestsh | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| sysprep-image.pkr.hcl, packer start → exit, image prepared (median of ${RUNS}) | ${(mv / 1000).toFixed(2)} s | ${(mg / 1000).toFixed(2)} s | ${(mg / mv).toFixed(2)} |`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
