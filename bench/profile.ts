// Where the host's time goes in a small call: N `is-file` calls on a launched
// session, timed (wall, and the host CPU they cost: user+system per call),
// then N more under V8's sampling profiler for the functions with the most
// self time. With `--before DIR`
// (a checkout of an earlier commit, node_modules linked in), the same is run
// on that tree too, alternating rounds in child processes of one run, so
// both see the same machine load: the before/after of a change to the call
// path.
//
//   npx tsx bench/profile.ts [--calls N] [--runs N] [--top N] [--before DIR]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Session as Inspector } from 'node:inspector/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { arg, median } from './util.js';

const CALLS = arg('--calls', 1000);
const RUNS = arg('--runs', 3);
const TOP = arg('--top', 5);

interface Result {
  wallMsPerCall: number;
  cpuMsPerCall: number;
  /** self time in ms over the N calls, by function (name file:line) */
  self: Record<string, number>;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** Runs in a child: one session of the tree at `tree`, N calls profiled; prints a Result as JSON. */
async function profileOnce(tree: string): Promise<void> {
  const { Session } = (await import(pathToFileURL(join(tree, 'src', 'index.ts')).href)) as typeof import('../src/index.js');
  const { ext4Image } = (await import(pathToFileURL(join(tree, 'test', 'helpers.ts')).href)) as typeof import('../test/helpers.js');
  const work = mkdtempSync(join(tmpdir(), 'guestsh-profile-'));
  const s = new Session();
  try {
    await s.addDrive(ext4Image(join(work, 'p.img'), 32, { hello: 'hello\n' }), { format: 'raw' });
    await s.launch();
    await s.call('mount', ['/dev/sda', '/']);
    // Warm: the first calls build the encoding plan and let the JIT settle.
    for (let i = 0; i < 50; i++) await s.call('is_file', ['/hello']);
    const loop = async (): Promise<void> => {
      for (let i = 0; i < CALLS; i++) if ((await s.call('is_file', ['/hello'])) !== true) throw new Error('is_file answered false');
    };
    // Timed without the profiler, whose sampling costs CPU of its own.
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await loop();
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const inspector = new Inspector();
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.setSamplingInterval', { interval: 250 });
    await inspector.post('Profiler.start');
    await loop();
    const { profile } = await inspector.post('Profiler.stop');
    inspector.disconnect();
    const byId = new Map<number, ProfileNode>((profile.nodes as ProfileNode[]).map((n) => [n.id, n]));
    const self: Record<string, number> = {};
    const samples = profile.samples ?? [];
    const deltas = profile.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) {
      const f = byId.get(samples[i]!)!.callFrame;
      // (idle) is the process waiting for the appliance: not host cost.
      if (f.functionName === '(idle)') continue;
      const key = `${f.functionName || '(anonymous)'} ${f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : f.functionName.startsWith('(') ? '' : '[native]'}`.trim();
      self[key] = (self[key] ?? 0) + (deltas[i] ?? 0) / 1000;
    }
    const result: Result = { wallMsPerCall: wall / CALLS, cpuMsPerCall: (cpu.user + cpu.system) / 1000 / CALLS, self };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await s.close();
    rmSync(work, { recursive: true, force: true });
  }
}

function runChild(tree: string): Result {
  const r = spawnSync(process.execPath, [...process.execArgv, import.meta.filename, '--child', tree, '--calls', String(CALLS)], {
    cwd: tree,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`the profile of ${tree} failed (${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Result;
}

function report(label: string, results: Result[]): void {
  const total = new Map<string, number[]>();
  for (const r of results) for (const [k, v] of Object.entries(r.self)) total.set(k, [...(total.get(k) ?? []), v]);
  const rows = [...total.entries()].map(([k, vs]) => [k, vs.reduce((a, b) => a + b, 0) / results.length] as const).sort((a, b) => b[1] - a[1]);
  const sampled = rows.reduce((a, [, v]) => a + v, 0);
  console.log(
    `${label}: wall ${median(results.map((r) => r.wallMsPerCall)).toFixed(2)} ms/call, host CPU ${median(results.map((r) => r.cpuMsPerCall)).toFixed(3)} ms/call ` +
      `(median of ${results.length}×${CALLS}); busy samples ${(sampled / CALLS).toFixed(3)} ms/call; top ${TOP} by self time:`,
  );
  for (const [k, v] of rows.slice(0, TOP)) console.log(`  ${(v / CALLS * 1000).toFixed(1).padStart(7)} µs/call  ${((v / sampled) * 100).toFixed(1).padStart(5)}%  ${k}`);
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  await profileOnce(process.argv[childAt + 1]!);
} else {
  const beforeAt = process.argv.indexOf('--before');
  const trees: [string, string][] = [['this tree', resolve(import.meta.dirname, '..')]];
  if (beforeAt >= 0) trees.unshift(['before', resolve(process.argv[beforeAt + 1]!)]);
  const results = new Map<string, Result[]>(trees.map(([label]) => [label, []]));
  const load = [loadavg()[0]!];
  for (let r = 0; r < RUNS; r++) {
    for (const [label, tree] of trees) results.get(label)!.push(runChild(tree));
    load.push(loadavg()[0]!);
    process.stderr.write(`round ${r + 1}/${RUNS} done\n`);
  }
  console.log(`load average (1 min) during the run: ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} on ${cpus().length} cores`);
  for (const [label] of trees) report(label, results.get(label)!);
}
