// Customization benchmark, guestsh against virt-customize on the same image
// in one run: the same three changes (hostname, a written file, a command run
// in the guest), each tool as a CLI from process start to exit, the image
// changed for real (guestsh: committed). Every run gets a fresh copy of the
// Debian test guest; runs alternate so machine load hits both alike. The
// result is checked afterwards in each copy, so neither tool is timed doing
// less than the other. Prints medians and the guestsh/virt-customize ratio.
//
//   npx tsx bench/customize.ts [--runs N]

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from '../src/index.js';
import { arg, CLI, LIBGUESTFS_ENV, median } from './util.js';
import { ensureGuest } from '../testdata/index.js';

const RUNS = arg('--runs', 3);

/** Wall time of a command from spawn to exit, in ms; it must succeed. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${cmd} failed (${code}): ${stderr.trim()}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

/** The three changes, as each tool reads back from the image. */
async function check(image: string, tool: string): Promise<void> {
  const s = new Session();
  try {
    await s.addDrive(image, { readonly: true });
    await s.launch();
    await s.g.mount('/dev/sda2', '/');
    const got = [(await s.g.cat('/etc/hostname')).trim(), await s.g.cat('/etc/motd'), String(await s.g.exists('/etc/bench-marker'))];
    const want = ['bench-host', 'hello from the bench\n', 'true'];
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${tool} left ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  } finally {
    await s.close();
  }
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
      await timed(
        'virt-customize',
        ['-q', '-a', a, '--hostname', 'bench-host', '--write', '/etc/motd:hello from the bench\n', '--run-command', 'touch /etc/bench-marker'],
        LIBGUESTFS_ENV,
      ),
    );
    await check(a, 'virt-customize');
    const b = copy(`gs${i}.qcow2`);
    gs.push(await timed('node', [CLI, 'run', '-a', b, '-i', recipe], process.env));
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
