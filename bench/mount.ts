// Mount benchmark, `guestsh mount` against guestmount on identical copies of
// the Debian test guest, alternating in one run: mount with -i (read-only),
// `find` the whole tree, read every regular file, unmount. The two tools
// must see the same number of entries and bytes, so neither is timed doing
// less. Prints each phase and the guestsh/guestmount ratio of find + read.
//
//   npx tsx bench/mount.ts [--runs N]

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGuest } from '../testdata/index.js';
import { arg, CLI, LIBGUESTFS_ENV, median } from './util.js';

const RUNS = arg('--runs', 1);

interface Tool {
  name: string;
  mount: (image: string, mnt: string) => [string, string[], NodeJS.ProcessEnv];
  unmount: (mnt: string) => [string, string[]];
}

const TOOLS: Tool[] = [
  {
    name: 'guestsh',
    mount: (image, mnt) => ['node', [CLI, 'mount', '--format=raw', '--ro', '-a', image, '-i', mnt], process.env],
    unmount: (mnt) => ['node', [CLI, 'umount', mnt]],
  },
  {
    name: 'guestmount',
    mount: (image, mnt) => ['guestmount', ['--format=raw', '--ro', '-a', image, '-i', '--no-fork', mnt], LIBGUESTFS_ENV],
    unmount: (mnt) => ['guestunmount', [mnt]],
  },
];

const isMounted = (mnt: string): boolean => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { maxBuffer: 256 << 20, env: { ...process.env, LC_ALL: 'C' } }).toString();
}

interface Result {
  mountMs: number;
  findMs: number;
  readMs: number;
  unmountMs: number;
  entries: number;
  bytes: number;
}

async function once(tool: Tool, image: string, mnt: string): Promise<Result> {
  mkdirSync(mnt, { recursive: true });
  const [cmd, args, env] = tool.mount(image, mnt);
  const t0 = process.hrtime.bigint();
  const p = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => p.on('exit', resolve));
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 10 * 60_000;
  while (!isMounted(mnt)) {
    if (gone || Date.now() > deadline) throw new Error(`${tool.name} did not mount: ${stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const mountMs = ms(t0);
  try {
    const t1 = process.hrtime.bigint();
    const entries = sh(`find ${mnt} | wc -l`);
    const findMs = ms(t1);
    const t2 = process.hrtime.bigint();
    const bytes = sh(`find ${mnt} -type f -print0 | xargs -0 cat | wc -c`);
    const readMs = ms(t2);
    const t3 = process.hrtime.bigint();
    const [ucmd, uargs] = tool.unmount(mnt);
    execFileSync(ucmd, uargs);
    const code = await exited;
    if (code !== 0) throw new Error(`${tool.name} exited with ${code}: ${stderr.trim()}`);
    return { mountMs, findMs, readMs, unmountMs: ms(t3), entries: Number(entries), bytes: Number(bytes) };
  } finally {
    if (isMounted(mnt)) execFileSync('umount', ['-l', mnt]);
    if (!gone) p.kill('SIGKILL');
  }
}

const work = mkdtempSync(join(tmpdir(), 'guestsh-bench-'));
try {
  const base = (await ensureGuest('debian')).raw;
  const results = new Map<string, Result[]>(TOOLS.map((t) => [t.name, []]));
  for (let run = 0; run < RUNS; run++) {
    // Alternate which tool goes first, so load and caches favour neither.
    for (const tool of run % 2 === 0 ? TOOLS : [...TOOLS].reverse()) {
      const image = join(work, `${tool.name}.img`);
      execFileSync('cp', ['--sparse=always', base, image]);
      const r = await once(tool, image, join(work, `mnt-${tool.name}`));
      results.get(tool.name)!.push(r);
      rmSync(image);
      process.stderr.write(`${tool.name}: ${JSON.stringify(r)}\n`);
    }
  }
  const [a, b] = TOOLS.map((t) => results.get(t.name)!);
  if (a!.some((r, i) => r.entries !== b![i]!.entries || r.bytes !== b![i]!.bytes)) throw new Error('the tools saw different trees');
  const m = (rs: Result[], f: (r: Result) => number): number => median(rs.map(f));
  const row = (label: string, f: (r: Result) => number): string => {
    const gm = m(b!, f);
    const gs = m(a!, f);
    return `| ${label} | ${(gm / 1000).toFixed(2)} s | ${(gs / 1000).toFixed(2)} s | ${(gs / gm).toFixed(2)} |`;
  };
  console.log(`${a![0]!.entries} entries, ${a![0]!.bytes} bytes in regular files; median of ${RUNS}`);
  console.log('| measure | guestmount | guestsh mount | ratio |');
  console.log('|---|---|---|---|');
  console.log(row('mount -i until mounted', (r) => r.mountMs));
  console.log(row('find (whole tree)', (r) => r.findMs));
  console.log(row('read every regular file', (r) => r.readMs));
  console.log(row('**find + read**', (r) => r.findMs + r.readMs));
  console.log(row('unmount until the tool exited', (r) => r.unmountMs));
} finally {
  rmSync(work, { recursive: true, force: true });
}
