// A pipeline of separate CLI invocations, one call each (is-file), three ways,
// alternating in one run so machine load hits all alike:
//   guestsh --remote   against a `guestsh --listen` session
//   guestfish --remote against a `guestfish --listen` one (TCG forced)
//   guestsh -a IMG --ro CMD, one whole session per invocation (resumed appliance)
// Each resident way is timed twice: the N invocations alone, and the whole
// pipeline with the --listen start and the --remote exit. Prints medians, the
// ratios (below 1.0: guestsh --remote is faster), and the load average.
//
//   npx tsx bench/remote.ts [--runs N] [--calls N]

import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { arg, CLI, LIBGUESTFS_ENV, median, timed } from './util.js';
import { ext4Image } from '../test/helpers.js';

const RUNS = arg('--runs', 3);
const CALLS = arg('--calls', 20);
const run = promisify(execFile);

const work = mkdtempSync(join(tmpdir(), 'guestsh-bench-remote-'));
const image = ext4Image(join(work, 'disk.img'), 32, { '/hello': 'hello\n' });
const OPEN = ['--ro', '--format=raw', '-a', image, '-m', '/dev/sda:/:ro'];
const env = { ...process.env };
delete env.GUESTFISH_PID;

const tools = {
  guestsh: { cmd: 'node', pre: [CLI], env },
  guestfish: { cmd: 'guestfish', pre: [] as string[], env: LIBGUESTFS_ENV },
};

/**
 * `--listen`'s stdout once the foreground process has exited. Not execFile:
 * guestfish's forked listener keeps the stderr it inherited, so a captured
 * stderr would stay open for the listener's whole life.
 */
function listen(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const bound = setTimeout(() => p.kill('SIGKILL'), 600_000);
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // 'close': exited, and stdout read to its end (guestfish's listener closes its copy before it waits for clients).
    p.on('close', (code) => {
      clearTimeout(bound);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} --listen failed (${code})`));
    });
  });
}

/** Start the listener, N remote calls, exit: the calls' time and the whole pipeline's. */
async function resident(tool: keyof typeof tools): Promise<{ calls: number; whole: number }> {
  const t = tools[tool];
  const t0 = performance.now();
  const stdout = await listen(t.cmd, [...t.pre, '--listen', ...OPEN], t.env);
  const pid = /^GUESTFISH_PID=(\d+); export GUESTFISH_PID$/m.exec(stdout)?.[1];
  if (!pid) throw new Error(`${tool} --listen printed no pid: ${stdout}`);
  const t1 = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const { stdout: answer } = await run(t.cmd, [...t.pre, `--remote=${pid}`, 'is-file', '/hello'], { env: t.env, timeout: 60_000 });
    if (answer !== 'true\n') throw new Error(`${tool} --remote is-file answered ${JSON.stringify(answer)}`);
  }
  const t2 = performance.now();
  await timed(t.cmd, [...t.pre, `--remote=${pid}`, 'exit'], t.env);
  return { calls: t2 - t1, whole: performance.now() - t0 };
}

/** N whole guestsh runs, each opening the image and making its one call. */
async function separate(): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const { stdout } = await run('node', [CLI, ...OPEN, 'is-file', '/hello'], { env, timeout: 600_000 });
    if (stdout !== 'true\n') throw new Error(`guestsh is-file answered ${JSON.stringify(stdout)}`);
  }
  return performance.now() - t0;
}

try {
  const loadBefore = loadavg();
  // One throwaway session first, so the saved appliance exists before anything is timed.
  await run('node', [CLI, ...OPEN, 'is-file', '/hello'], { env, timeout: 600_000 });
  const r = { gsCalls: [] as number[], gsWhole: [] as number[], gfCalls: [] as number[], gfWhole: [] as number[], separate: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    const gs = await resident('guestsh');
    r.gsCalls.push(gs.calls);
    r.gsWhole.push(gs.whole);
    const gf = await resident('guestfish');
    r.gfCalls.push(gf.calls);
    r.gfWhole.push(gf.whole);
    r.separate.push(await separate());
    process.stderr.write(`run ${i + 1}/${RUNS}: guestsh --remote ${gs.calls.toFixed(0)} ms (whole ${gs.whole.toFixed(0)}), guestfish --remote ${gf.calls.toFixed(0)} ms (whole ${gf.whole.toFixed(0)}), separate guestsh ${r.separate[i]!.toFixed(0)} ms\n`);
  }
  const loadAfter = loadavg();
  const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)])) as Record<keyof typeof r, number>;
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  console.log(`pipeline of ${CALLS} invocations, one is-file each; median of ${RUNS} runs`);
  console.log(`  guestsh --remote     ${s(m.gsCalls)} (${(m.gsCalls / CALLS).toFixed(0)} ms each); with --listen and exit ${s(m.gsWhole)}`);
  console.log(`  guestfish --remote   ${s(m.gfCalls)} (${(m.gfCalls / CALLS).toFixed(0)} ms each); with --listen and exit ${s(m.gfWhole)}`);
  console.log(`  ${CALLS} guestsh runs      ${s(m.separate)} (${(m.separate / CALLS).toFixed(0)} ms each)`);
  console.log(`ratio guestsh --remote / guestfish --remote: calls ${(m.gsCalls / m.gfCalls).toFixed(2)}, whole pipeline ${(m.gsWhole / m.gfWhole).toFixed(2)}`);
  console.log(`ratio guestsh --remote / ${CALLS} separate guestsh runs: calls ${(m.gsCalls / m.separate).toFixed(3)}, whole pipeline ${(m.gsWhole / m.separate).toFixed(3)}`);
  console.log(`load average (1, 5, 15 min): before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
