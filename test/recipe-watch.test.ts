// `guestsh run --watch` through the CLI, as a user runs it: every save of the
// recipe, of a module it imports or of a file it uploads starts a run from
// the same state; each run reports what it changed and is rolled back; a
// broken save reports its error and the loop goes on; Ctrl-C (SIGINT to the
// CLI) ends it with the image byte-identical and nothing left behind.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGuest } from '../testdata/index.js';
import { CLI, isolatedTmpdir, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
let img = '';
let baseSha = '';
const recipeDir = join(tmp.dir, 'recipes');
const entry = join(recipeDir, 'watch.gfs.ts');
const lib = join(recipeDir, 'lib.gfs.ts');
const data = join(recipeDir, 'data.txt');

interface Change {
  filesystem: string;
  path: string;
  change: string;
}
interface WatchRun {
  run: number;
  trigger: string | null;
  ok: boolean;
  failure?: { kind: string; name: string; message: string; location: { file: string; line: number; column: number } | null };
  changes: Change[];
  ran: boolean;
  sincePrevious: { added: Change[]; dropped: Change[] } | null;
  exitCode: number;
  ms: number;
}

/** The CLI in watch mode, its JSON lines collected as they come. */
class WatchCli {
  readonly proc: ChildProcess;
  readonly runs: WatchRun[] = [];
  stderr = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.proc = spawn('node', [CLI, 'run', '--watch', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.runs.push(JSON.parse(buf.slice(0, nl)) as WatchRun);
        buf = buf.slice(nl + 1);
        this.wake();
      }
    });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.wake();
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits (bounded) until `ready()` holds, re-checking whenever output arrives. */
  async until(what: string, ready: () => boolean, timeoutMs = scaled(240_000)): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr:\n${this.stderr}`);
      if (this.proc.exitCode !== null) throw new Error(`guestsh exited (${this.proc.exitCode}) while waiting for ${what}; stderr:\n${this.stderr}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 1000);
      });
    }
  }

  /** The next run's report, after `edit` is saved. */
  async runAfter(edit: () => void): Promise<WatchRun> {
    const before = this.runs.length;
    edit();
    await this.until(`run ${before + 1}`, () => this.runs.length > before);
    return this.runs[before]!;
  }
}

const paths = (r: WatchRun): string[] => r.changes.map((c) => `${c.change} ${c.filesystem}:${c.path}`);

let cli: WatchCli | null = null;

beforeAll(async () => {
  img = join(tmp.dir, 'watch.qcow2');
  execFileSync('cp', ['--sparse=always', (await ensureGuest('debian')).qcow2, img]);
  baseSha = await sha256(img);
  mkdirSync(recipeDir);
  writeFileSync(lib, "export async function mark(g: any, x: string) { await g.write('/etc/watch-' + x, x); }\n");
  writeFileSync(data, 'data 1\n');
  writeFileSync(entry, recipe('a'));
}, scaled(600_000));

afterAll(async () => {
  if (cli && cli.proc.exitCode === null) {
    cli.proc.kill('SIGKILL');
    await cli.exited;
  }
  tmp.restore();
});

function recipe(mark: string): string {
  return `import { mark } from './lib.gfs.ts';
export default async ({ g }: any) => {
  await mark(g, '${mark}');
  await g.upload('data.txt', '/etc/watch-data');
};
`;
}

describe('guestsh run --watch', () => {
  it('runs once at start, then once per save, each from the same state; a save during the first run counts', async () => {
    cli = new WatchCli(['-a', img, '-m', '/dev/sda2:/', entry]);
    // The watcher is up before the first run starts, and that run takes seconds: save during it.
    await cli.until('the watcher', () => /watching/.test(cli!.stderr));
    const savedDuringFirstRun = cli.runs.length === 0;
    writeFileSync(entry, recipe('b'));
    await cli.until('two runs', () => cli!.runs.length >= 2);
    expect(savedDuringFirstRun).toBe(true);
    const [first, second] = cli.runs as [WatchRun, WatchRun];
    expect(first).toMatchObject({ run: 1, trigger: null, ok: true, exitCode: 0 });
    // It compiled whichever text was there when it started.
    expect(paths(first)).toEqual([expect.stringMatching(/^added \/dev\/sda2:\/etc\/watch-[ab]$/), 'added /dev/sda2:/etc/watch-data']);
    expect(second).toMatchObject({ run: 2, trigger: 'watch.gfs.ts', ok: true });
    expect(paths(second)).toEqual(['added /dev/sda2:/etc/watch-b', 'added /dev/sda2:/etc/watch-data']);
    // Recipe start to rollback done: the run, the comparison, the rollback.
    console.log(`watch: run 1 took ${first.ms.toFixed(0)} ms (lists the untouched image too), run 2 ${second.ms.toFixed(0)} ms`);
  }, scaled(600_000));

  it('re-runs when an imported module or an uploaded file is saved', async () => {
    const third = await cli!.runAfter(() =>
      writeFileSync(lib, "export async function mark(g: any, x: string) { await g.write('/etc/watch-lib-' + x, x); }\n"),
    );
    expect(third).toMatchObject({ trigger: 'lib.gfs.ts', ok: true });
    // /etc/watch-b, which run 2 wrote, is absent: every run starts from the state after mounting.
    expect(paths(third)).toEqual(['added /dev/sda2:/etc/watch-data', 'added /dev/sda2:/etc/watch-lib-b']);

    const fourth = await cli!.runAfter(() => writeFileSync(data, 'data 2\n'));
    expect(fourth).toMatchObject({ trigger: 'data.txt', ok: true });
    expect(paths(fourth)).toEqual(['added /dev/sda2:/etc/watch-data', 'added /dev/sda2:/etc/watch-lib-b']);
    // Each run is compared with the previous one: the fourth changed what the third did.
    expect(fourth.sincePrevious).toEqual({ added: [], dropped: [] });
    expect(third.sincePrevious!.added.map((c) => c.path)).toEqual(['/etc/watch-lib-b']);
    expect(third.sincePrevious!.dropped.map((c) => c.path)).toEqual(['/etc/watch-b']);
  }, scaled(600_000));

  it('a broken save reports its error with the line, changes nothing, and the loop goes on', async () => {
    const broken = await cli!.runAfter(() => writeFileSync(entry, 'export default async ({ g }: any) => {\n  await g.write("/etc/x", ;\n};\n'));
    expect(broken.ok).toBe(false);
    expect(broken.failure!.kind).toBe('compile');
    expect(broken.failure!.location).toMatchObject({ file: expect.stringMatching(/watch\.gfs\.ts$/), line: 2 });
    expect(broken.exitCode).toBe(2);
    expect(broken.changes).toEqual([]);
    // Found by compiling, before the session was touched (no comparison, no rollback).
    expect(broken.ran).toBe(false);
    console.log(`watch: a broken save reported in ${broken.ms.toFixed(0)} ms`);

    // A type error too, with its line, and the same way.
    const mistyped = await cli!.runAfter(() => writeFileSync(entry, "import type { RecipeContext } from 'guestsh';\nexport default async ({ g }: RecipeContext) => {\n  await g.mkdri('/x');\n};\n"));
    expect(mistyped).toMatchObject({ ok: false, ran: false, exitCode: 2, changes: [] });
    expect(mistyped.failure).toMatchObject({ kind: 'compile', name: 'RecipeTypeErrors', location: { line: 3, column: 11 } });
    expect(mistyped.failure!.message).toMatch(/^TS2551: Property 'mkdri' does not exist/);
    console.log(`watch: a save with a type error reported in ${mistyped.ms.toFixed(0)} ms`);

    // A run that fails half-way lists what it did before failing; that is rolled back too.
    const failing = await cli!.runAfter(() =>
      writeFileSync(entry, "export default async ({ g }: any) => {\n  await g.write('/etc/half', 'x');\n  throw new Error('stop here');\n};\n"),
    );
    expect(failing).toMatchObject({ ok: false, exitCode: 1 });
    expect(failing.failure!.message).toBe('stop here');
    expect(failing.failure!.location).toMatchObject({ line: 3 });
    expect(paths(failing)).toEqual(['added /dev/sda2:/etc/half']);

    const fixed = await cli!.runAfter(() => writeFileSync(entry, recipe('c')));
    expect(fixed.ok).toBe(true);
    expect(paths(fixed)).toEqual(['added /dev/sda2:/etc/watch-data', 'added /dev/sda2:/etc/watch-lib-c']);
  }, scaled(600_000));

  it('Ctrl-C ends it, even in the middle of a run that would loop for ten minutes: exit 0, the image byte-identical, nothing left behind', async () => {
    // The save starts a run that writes, says so, then spins; Ctrl-C comes while it spins.
    writeFileSync(entry, "export default async ({ g, log }: any) => {\n  await g.write('/etc/spin', 'x');\n  log('spinning now');\n  for (;;) {}\n};\n");
    await cli!.until('the spinning run', () => cli!.stderr.includes('spinning now'));
    // The run's header comes before its log lines.
    const header = cli!.stderr.lastIndexOf('[watch] run ');
    expect(header).toBeGreaterThanOrEqual(0);
    expect(header).toBeLessThan(cli!.stderr.lastIndexOf('spinning now'));
    const t0 = Date.now();
    cli!.proc.kill('SIGINT');
    const code = await Promise.race([cli!.exited, new Promise((r) => setTimeout(() => r('still running after the wait'), scaled(60_000)))]);
    expect(code).toBe(0);
    console.log(`watch: Ctrl-C during a spinning run ended guestsh in ${Date.now() - t0} ms`);
    expect(cli!.runs.some((r) => r.changes.some((c) => c.path === '/etc/spin'))).toBe(false);
    expect(await sha256(img)).toBe(baseSha);
    expect(readdirSync(tmp.dir).filter((f) => f.includes('guestsh-'))).toEqual([]);
    expect(existsSync(`${img}.guestsh-overlay`)).toBe(false);
    expect(existsSync(`${img}.guestsh-lock`)).toBe(false);
    // No qemu of this test is left (its command line names the test's temp dir).
    let qemus = '';
    try {
      qemus = execFileSync('pgrep', ['-af', `qemu-system.*${tmp.dir}`]).toString();
    } catch {
      // pgrep exits 1 when nothing matches.
    }
    expect(qemus).toBe('');
  }, scaled(120_000));

  it('refuses a standard-library recipe (there is no file to watch) with a one-line error', async () => {
    const { guestsh } = await import('./helpers.js');
    const r = await guestsh(['run', '--watch', '-a', img, 'guestsh/sysprep']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--watch re-runs a recipe file/);
  }, scaled(120_000));
});
