// Customization benchmark, guestsh against virt-customize on the same image
// in one run: the same three changes (hostname, a written file, a command run
// in the guest), each tool as a CLI from process start to exit, the image
// changed for real (guestsh: committed). Every run gets a fresh copy of the
// Debian test guest; runs alternate so machine load hits both alike. The
// result is checked afterwards in each copy, so neither tool is timed doing
// less than the other. Prints medians and the guestsh/virt-customize ratio.
//
//   npx tsx bench/customize.ts [--runs N]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, CLI, LIBGUESTFS_ENV, median, readGuest, timed } from './util.js';
import { ensureGuest } from '../testdata/index.js';

const RUNS = arg('--runs', 3);

/** The three changes, as each tool reads back from the image. */
async function check(image: string, tool: string): Promise<void> {
  await readGuest(image, async (g) => {
    const got = [(await g.cat('/etc/hostname')).trim(), await g.cat('/etc/motd'), String(await g.exists('/etc/bench-marker'))];
    const want = ['bench-host', 'hello from the bench\n', 'true'];
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${tool} left ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  });
}

const work = mkdtempSync(join(tmpdir(), 'guestsh-bench-'));
try {
  const base = (await ensureGuest('debian')).qcow2;
  const recipe = join(work, 'bench.gfs.ts');
  writeFileSync(
    recipe,
    `import { hostname, write, runCommand } from 'guestsh/customize';
export default async (ctx: any) => {
  await hostname(ctx, 'bench-host');
  await write(ctx, '/etc/motd', 'hello from the bench\\n');
  await runCommand(ctx, 'touch /etc/bench-marker');
};
`,
  );
  const copy = (name: string): string => {
    const p = join(work, name);
    execFileSync('cp', ['--sparse=always', base, p]);
    return p;
  };
  // One untimed guestsh run first: it saves the booted appliance that later sessions resume,
  // as any second use on a machine would find it.
  await timed('node', [CLI, 'run', '-a', copy('warm.qcow2'), '-i', recipe], process.env);

  const vc: number[] = [];
  const gs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const a = copy(`vc${i}.qcow2`);
    vc.push(
      (await timed(
        'virt-customize',
        ['-q', '-a', a, '--hostname', 'bench-host', '--write', '/etc/motd:hello from the bench\n', '--run-command', 'touch /etc/bench-marker'],
        LIBGUESTFS_ENV,
      )).ms,
    );
    await check(a, 'virt-customize');
    const b = copy(`gs${i}.qcow2`);
    gs.push((await timed('node', [CLI, 'run', '-a', b, '-i', recipe], process.env)).ms);
    await check(b, 'guestsh');
    console.log(`run ${i + 1}: virt-customize ${(vc[i]! / 1000).toFixed(2)} s, guestsh run ${(gs[i]! / 1000).toFixed(2)} s`);
  }
  const [mv, mg] = [median(vc), median(gs)];
  console.log('');
  console.log('| measure | virt-customize | guestsh | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| hostname + write + run-command, process start → exit, image changed (median of ${RUNS}) | ${(mv / 1000).toFixed(2)} s | ${(mg / 1000).toFixed(2)} s | ${(mg / mv).toFixed(2)} |`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
