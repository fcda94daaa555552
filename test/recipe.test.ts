// Recipes against the Debian test guest: source-mapped errors, compile
// errors found before the appliance starts, commit on success, dry runs, and
// the start overhead (compile + isolate), printed. The escape attempts (host
// paths, refused actions, limits) are in sandbox-escape.test.ts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { RecipeCompileFailed, runRecipe, type RunOptions, type RunResult } from '../src/runtime/recipe/index.js';
import { ensureImage } from '../testdata/index.js';
import { isolatedTmpdir, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => tmp.restore());

const R = (f: string): string => resolve(__dirname, 'recipes', f);
let img = '';
let baseSha = '';

function copyImage(name: string, from: string): string {
  const p = join(tmp.dir, name);
  execFileSync('cp', ['--sparse=always', from, p]);
  return p;
}

async function run(recipe: string, extra: Partial<RunOptions> = {}): Promise<RunResult> {
  const logs: string[] = [];
  const r = await runRecipe({
    recipe: R(recipe),
    images: [{ path: img, format: 'raw' }],
    mounts: [
      { device: '/dev/sda2', mountpoint: '/' },
      { device: '/dev/sda1', mountpoint: '/boot' },
    ],
    timeoutMs: 20_000,
    log: (l) => logs.push(l),
    ...extra,
  });
  (r as RunResult & { logs: string[] }).logs = logs;
  return r;
}

beforeAll(async () => {
  img = copyImage('escape.img', await ensureImage('debian'));
  baseSha = await sha256(img);
}, scaled(600_000));

describe('errors point at the recipe source', () => {
  it('a throw reports the .gfs.ts file, line and column', async () => {
    const r = await run('throws.gfs.ts');
    expect(r.failure!.recipeLocation).toEqual({ file: R('throws.gfs.ts'), line: 8, column: 9 });
    expect(r.failure!.stack).toContain(`${R('throws.gfs.ts')}:8:9`);
    expect(r.exitCode).toBe(1);
  });
  it('a throw in an imported module names both frames', async () => {
    const r = await run('imports-helper.gfs.ts');
    expect(r.failure!.name).toBe('TypeError');
    expect(r.failure!.location).toEqual({ file: R('lib/helper.gfs.ts'), line: 7, column: 9 });
    expect(r.failure!.stack).toContain(`${R('imports-helper.gfs.ts')}:6:3`);
  });
  it('a syntax error is a compile failure at its line, thrown before the appliance starts', async () => {
    // No image: a launch would fail first.
    const e = await run('syntax-error.gfs.ts', { images: [{ path: join(tmp.dir, 'missing.img'), format: 'raw' }] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RecipeCompileFailed);
    const { failure } = e as RecipeCompileFailed;
    expect(failure.kind).toBe('compile');
    expect(failure.location).toMatchObject({ file: R('syntax-error.gfs.ts'), line: 2 });
    expect(tmp.leftovers()).toEqual([]);
  });
  it('a failing guestfs call is a GuestfsError at the awaiting line', async () => {
    const r = await run('guestfs-error.gfs.ts');
    expect(r.failure!.name).toBe('GuestfsError');
    expect(r.failure!.message).toMatch(/\/no\/such\/file: No such file or directory/);
    expect(r.failure!.recipeLocation).toMatchObject({ file: R('guestfs-error.gfs.ts'), line: 5 });
    expect(await sha256(img)).toBe(baseSha);
  }, scaled(300_000));
});

describe('successful runs', () => {
  it('commits; the output dir gets downloads; values and bigint cross the bridge; start overhead printed', { timeout: scaled(300_000) }, async () => {
    const img2 = copyImage('commit.img', img);
    const out = join(tmp.dir, 'out-commit');
    const logs: string[] = [];
    const r = await runRecipe({
      recipe: R('commit.gfs.ts'),
      images: [{ path: img2, format: 'raw' }],
      inspect: true,
      params: { name: 'recipe-host' },
      outputDir: out,
      log: (l) => logs.push(l),
    });
    expect(r.failure).toBeUndefined();
    expect(r.ok && r.committed).toBe(true);
    // After the commit the session is closed too: its run directory is gone.
    expect(tmp.leftovers()).toEqual([]);
    expect(readFileSync(join(out, 'hostname.txt'), 'utf8')).toBe('recipe-host\n');
    expect(r.value).toMatchObject({ major: 'bigint', uploaded: 'hello from beside the recipe\n' });
    expect(logs.some((l) => l.includes('version'))).toBe(true);
    const t = r.timings;
    console.log(
      `recipe start overhead: compile ${t.compileMs.toFixed(1)} ms + isolate ${t.isolateMs.toFixed(1)} ms + instantiate ${t.instantiateMs.toFixed(1)} ms ` +
        `= ${(t.compileMs + t.isolateMs + t.instantiateMs).toFixed(1)} ms (launch ${t.launchMs.toFixed(0)} ms, run ${t.runMs.toFixed(0)} ms, commit ${t.commitMs.toFixed(0)} ms)`,
    );
    // The committed image has the change.
    const s = new Session();
    try {
      await s.addDrive(img2, { format: 'raw', readonly: true });
      await s.launch();
      await s.g.mount('/dev/sda2', '/');
      expect(await s.g.cat('/etc/hostname')).toBe('recipe-host\n');
      expect(await s.g.cat('/upload-test')).toBe('hello from beside the recipe\n');
    } finally {
      await s.close();
    }
  });

  it('a second run reuses compiled modules (warm overhead printed)', async () => {
    const r = await run('values.gfs.ts', { params: { x: '1' }, images: [{ path: img, format: 'raw', readonly: true }], mounts: [] });
    expect(r.ok).toBe(true);
    const t = r.timings;
    console.log(`recipe start overhead (warm): compile ${t.compileMs.toFixed(1)} ms + isolate ${t.isolateMs.toFixed(1)} ms + instantiate ${t.instantiateMs.toFixed(1)} ms`);
    expect(await sha256(img)).toBe(baseSha);
  });

  it('--dry-run reports the changes and leaves the image alone', { timeout: scaled(300_000) }, async () => {
    const r = await run('commit.gfs.ts', { dryRun: true, params: { name: 'dry' }, outputDir: join(tmp.dir, 'out-dry') });
    expect(r.ok).toBe(true);
    expect(r.committed).toBe(false);
    expect(r.changes).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: '/etc/hostname', change: 'modified' }), expect.objectContaining({ path: '/upload-test', change: 'added' })]),
    );
    expect(await sha256(img)).toBe(baseSha);
  });

  it('runs a standard-library recipe (guestsh/inspect, here re-exported without its readOnly) and returns its report; reading commits nothing, even read-write', async () => {
    const before = await sha256(img);
    const r = await runRecipe({ recipe: R('inspect-rw.gfs.ts'), images: [{ path: img, format: 'raw' }], log: () => {} });
    expect(r.failure).toBeUndefined();
    expect(r.value).toMatchObject({ distro: 'debian', hostname: 'guestsh-demo' });
    // Mounting read-write touched a superblock; no call wrote, so nothing was committed.
    expect(r.committed).toBe(false);
    expect(await sha256(img)).toBe(before);
  }, scaled(300_000));
});

describe('guestsh run --network', () => {
  it('gives the appliance a network only when asked; a read-only run commits nothing', { timeout: scaled(300_000) }, async () => {
    const { guestsh } = await import('./helpers.js');
    const on = await guestsh(['run', '--network', '--json', '--ro', '-a', img, R('network.gfs.ts')]);
    expect(on.code, on.stderr).toBe(0);
    const withNet = JSON.parse(on.stdout) as { committed: boolean; value: unknown };
    expect(withNet.value).toEqual({ network: true, interfaces: ['eth0', 'lo'], defaultRoute: true });
    expect(withNet.committed).toBe(false);
    const off = await guestsh(['run', '--json', '--ro', '-a', img, R('network.gfs.ts')]);
    expect(off.code, off.stderr).toBe(0);
    expect(JSON.parse(off.stdout).value).toEqual({ network: false, interfaces: ['lo'], defaultRoute: false });
    expect(await sha256(img)).toBe(baseSha);
  });
});
