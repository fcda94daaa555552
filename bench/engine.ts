// Engine benchmark, guestsh against guestfish on the same image in one run:
//   calls:  1000 small calls (is-file) after launch, timed inside each tool;
//   warm start: process start → first answered call (list-devices), both as
//           CLIs, guestsh resuming a saved appliance against guestfish's
//           (only, cold) launch, with where guestsh's time goes (in process:
//           restore, hot-plug, disks settled + clock, first call);
//   cold start: the same with guestsh booting (GUESTSH_SNAPSHOT=0).
// Every round runs each measure once, so machine load hits all alike. Prints
// medians, the guestsh/guestfish ratios (below 1.0 means guestsh is faster)
// and the load average during the run.
//
//   npx tsx bench/engine.ts [--runs N] [--calls N]

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
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

/** Where an in-process resumed session's start goes: the launch's phases, then its first call. */
async function resumeBreakdown(image: string): Promise<{ restoreMs: number; hotplugMs: number; settleMs: number; firstCallMs: number }> {
  const s = new Session();
  try {
    await s.addDrive(image, { format: 'raw' });
    await s.launch();
    const t0 = process.hrtime.bigint();
    await s.call('list_devices');
    const firstCallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const stats = s.launchStats;
    if (stats?.mode !== 'snapshot') throw new Error('the in-process session did not resume a saved appliance');
    return { restoreMs: stats.restoreMs, hotplugMs: stats.hotplugMs, settleMs: stats.settleMs, firstCallMs };
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
  const load = [loadavg()[0]!];
  const phases = { restoreMs: [] as number[], hotplugMs: [] as number[], settleMs: [] as number[], firstCallMs: [] as number[] };
  // Each round runs every measure once, so a change in the machine's load
  // falls on all of them alike.
  for (let r = 0; r < RUNS; r++) {
    launch.guestfish.push(await timeToFirstOutput('guestfish', cli, LIBGUESTFS_ENV));
    launch.resume.push(await timeToFirstOutput('node', [CLI, ...cli], process.env));
    launch.boot.push(await timeToFirstOutput('node', [CLI, ...cli], bootEnv));
    const stats = await resumeBreakdown(image);
    for (const k of Object.keys(phases) as (keyof typeof phases)[]) phases[k].push(stats[k]);
    calls.guestfish.push(await guestfishCalls(image, CALLS));
    calls.guestsh.push(await guestshCalls(image, CALLS));
    load.push(loadavg()[0]!);
    process.stderr.write(
      `round ${r + 1}/${RUNS}: launch guestfish ${launch.guestfish.at(-1)!.toFixed(0)} ms, guestsh resume ${launch.resume.at(-1)!.toFixed(0)} ms, ` +
        `guestsh boot ${launch.boot.at(-1)!.toFixed(0)} ms; ${CALLS} calls guestfish ${calls.guestfish.at(-1)!.toFixed(0)} ms, guestsh ${calls.guestsh.at(-1)!.toFixed(0)} ms\n`,
    );
  }
  const lf = median(launch.guestfish);
  const lb = median(launch.boot);
  const lr = median(launch.resume);
  const cf = median(calls.guestfish) / CALLS;
  const cg = median(calls.guestsh) / CALLS;
  const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  console.log(`load average (1 min) during the run: ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} on ${cpus().length} cores`);
  console.log(`small call is-file (median of ${RUNS}×${CALLS}): guestfish ${cf.toFixed(2)} ms, guestsh ${cg.toFixed(2)} ms, ratio ${(cg / cf).toFixed(2)}`);
  console.log(`warm start → first answer (median of ${RUNS}): guestfish cold ${sec(lf)}, guestsh resuming ${sec(lr)}, ratio ${(lr / lf).toFixed(3)}`);
  console.log(
    `  in process (median of ${RUNS}): restore ${median(phases.restoreMs)} ms, hot-plug ${median(phases.hotplugMs)} ms, ` +
      `disks settled + clock ${median(phases.settleMs)} ms, first call (list-devices) ${median(phases.firstCallMs).toFixed(0)} ms`,
  );
  console.log(`cold start → first answer (median of ${RUNS}): guestfish ${sec(lf)}, guestsh booting ${sec(lb)}, ratio ${(lb / lf).toFixed(2)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
