// Engine benchmark, guestsh against guestfish on the same image in one run:
//   launch: process start → first answered call (list-devices), both as CLIs;
//           guestsh twice: booting (GUESTSH_SNAPSHOT=0) and resuming a saved appliance;
//   resume breakdown: where a resumed session's time goes (in process);
//   calls:  1000 small calls (is-file) after launch, timed inside each tool.
// Runs alternate between the tools so machine load hits both alike. Prints
// medians and the guestsh/guestfish ratios (below 1.0 means guestsh is faster).
//
//   npx tsx bench/engine.ts [--runs N] [--calls N]

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from '../src/index.js';
import { arg, CLI, LIBGUESTFS_ENV, median } from './util.js';
import { ext4Image } from '../test/helpers.js';

const RUNS = arg('--runs', 3);
const CALLS = arg('--calls', 1000);

/** ms from spawn until the first byte on stdout; the process is then left to finish. */
function timeToFirstOutput(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let first: number | null = null;
    let stderr = '';
    p.stdout.on('data', () => {
      first ??= Number(process.hrtime.bigint() - t0) / 1e6;
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => {
      if (code !== 0 || first === null) reject(new Error(`${cmd} failed (${code}): ${stderr.trim()}`));
      else resolve(first);
    });
  });
}

/** guestfish timing its own loop: host `date` before and after the calls. */
function guestfishCalls(image: string, n: number): Promise<number> {
  const script = join(work, 'calls.gfs');
  writeFileSync(script, ['run', 'mount /dev/sda /', '!date +%s%N', ...Array(n).fill('is-file /hello'), '!date +%s%N', ''].join('\n'));
  return new Promise((resolve, reject) => {
    const p = spawn('guestfish', ['-a', image, '-f', script], { env: LIBGUESTFS_ENV, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      const stamps = out.split('\n').filter((l) => /^\d{18,}$/.test(l)).map(BigInt);
      const answers = out.split('\n').filter((l) => l === 'true').length;
      if (code !== 0 || stamps.length !== 2 || answers !== n) reject(new Error(`guestfish call loop failed (${code})`));
      else resolve(Number(stamps[1]! - stamps[0]!) / 1e6);
    });
  });
}

async function guestshCalls(image: string, n: number): Promise<number> {
  const s = new Session();
  try {
    await s.addDrive(image, { format: 'raw' });
    await s.launch();
    await s.call('mount', ['/dev/sda', '/']);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      if ((await s.call('is_file', ['/hello'])) !== true) throw new Error('is_file answered false');
    }
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    await s.close();
  }
}

const work = mkdtempSync(join(tmpdir(), 'guestsh-bench-'));
try {
  const image = ext4Image(join(work, 'bench.img'), 64, { hello: 'hello\n' });
  const launch = { guestfish: [] as number[], boot: [] as number[], resume: [] as number[] };
  const calls = { guestsh: [] as number[], guestfish: [] as number[] };
  const cli = ['-a', image, 'run', ':', 'list-devices'];
  const bootEnv = { ...process.env, GUESTSH_SNAPSHOT: '0' };
  // One unmeasured guestsh run first: it builds the appliance, runs the KVM
  // probe and saves the appliance if this machine never did (guestfish's
  // appliance cache is warm too by then).
  await timeToFirstOutput('node', [CLI, ...cli], process.env);
  for (let r = 0; r < RUNS; r++) {
    launch.guestfish.push(await timeToFirstOutput('guestfish', cli, LIBGUESTFS_ENV));
    launch.boot.push(await timeToFirstOutput('node', [CLI, ...cli], bootEnv));
    launch.resume.push(await timeToFirstOutput('node', [CLI, ...cli], process.env));
    process.stderr.write(
      `launch run ${r + 1}/${RUNS}: guestfish ${launch.guestfish.at(-1)!.toFixed(0)} ms, ` +
        `guestsh boot ${launch.boot.at(-1)!.toFixed(0)} ms, guestsh resume ${launch.resume.at(-1)!.toFixed(0)} ms\n`,
    );
  }
  const phases: Record<string, number[]> = { restoreMs: [], hotplugMs: [], settleMs: [], firstCallMs: [] };
  for (let r = 0; r < RUNS; r++) {
    const s = new Session();
    try {
      await s.addDrive(image, { format: 'raw' });
      await s.launch();
      const t0 = process.hrtime.bigint();
      await s.call('list_devices');
      const stats = s.launchStats;
      if (stats?.mode !== 'snapshot') throw new Error('the in-process session did not resume a saved appliance');
      phases.restoreMs!.push(stats.restoreMs);
      phases.hotplugMs!.push(stats.hotplugMs);
      phases.settleMs!.push(stats.settleMs);
      phases.firstCallMs!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    } finally {
      await s.close();
    }
  }
  for (let r = 0; r < RUNS; r++) {
    calls.guestfish.push(await guestfishCalls(image, CALLS));
    calls.guestsh.push(await guestshCalls(image, CALLS));
    process.stderr.write(`calls run ${r + 1}/${RUNS}: guestfish ${calls.guestfish.at(-1)!.toFixed(0)} ms, guestsh ${calls.guestsh.at(-1)!.toFixed(0)} ms\n`);
  }
  const lf = median(launch.guestfish);
  const lb = median(launch.boot);
  const lr = median(launch.resume);
  const cf = median(calls.guestfish) / CALLS;
  const cg = median(calls.guestsh) / CALLS;
  const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  console.log(`launch → first answer, booting (median of ${RUNS}): guestfish ${sec(lf)}, guestsh ${sec(lb)}, ratio ${(lb / lf).toFixed(2)}`);
  console.log(`launch → first answer, resuming (median of ${RUNS}): guestfish ${sec(lf)}, guestsh ${sec(lr)}, ratio ${(lr / lf).toFixed(2)}`);
  console.log(
    `resume breakdown (median of ${RUNS}): restore ${median(phases.restoreMs!)} ms, hot-plug ${median(phases.hotplugMs!)} ms, ` +
      `devices settled + clock ${median(phases.settleMs!)} ms, first call ${median(phases.firstCallMs!).toFixed(0)} ms`,
  );
  console.log(`small call is-file (median of ${RUNS}×${CALLS}): guestfish ${cf.toFixed(2)} ms, guestsh ${cg.toFixed(2)} ms, ratio ${(cg / cf).toFixed(2)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
