// The package as a stranger gets it: packed from a tree without dist/ (so
// prepack must build it), installed from the tarball into a new project
// offline, then used three ways: the CLI, the library (a real read-only
// session), and the shipped types (tsc over a program and a recipe, and a
// wrong call that must not compile).

import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureImage } from '../testdata/index.js';
import { scaled } from './slowdown.js';

const REPO = join(import.meta.dirname, '..');
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
// What a source checkout has and the tarball is built from (dist/ left out on purpose).
const SOURCES = ['package.json', 'package-lock.json', 'tsconfig.json', 'bin', 'src', 'guests', 'docs', 'README.md'];
// Compiled at install time by npm; the test reuses the checkout's builds
// instead of compiling isolated-vm again (minutes of CPU) and says so.
const NATIVE_BUILDS = [join('isolated-vm', 'out'), join('fs-ext', 'build')];

let work: string;
let project: string;
let tarballFiles: string[];

function sh(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: scaled(300_000), stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'guestsh-pack-'));
  const tree = join(work, 'tree');
  mkdirSync(tree);
  for (const s of SOURCES) cpSync(join(REPO, s), join(tree, s), { recursive: true });
  symlinkSync(join(REPO, 'node_modules'), join(tree, 'node_modules'));
  const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', work], tree)) as { filename: string; files: { path: string }[] }[];
  tarballFiles = packed[0]!.files.map((f) => f.path);
  project = join(work, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-guestsh', private: true, type: 'module' }));
  // The dependencies come from npm's cache where it has them (./dev's npm ci filled it).
  sh('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', join(work, packed[0]!.filename)], project);
  for (const b of NATIVE_BUILDS) cpSync(join(REPO, 'node_modules', b), join(project, 'node_modules', b), { recursive: true });
}, scaled(600_000));

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the packed tarball', () => {
  it('holds the built code, its types and the standard library, and no tests, test data, benchmarks or CI files', () => {
    expect(tarballFiles).toContain('dist/src/index.js');
    expect(tarballFiles).toContain('dist/src/index.d.ts');
    expect(tarballFiles).toContain('dist/src/cli.js');
    expect(tarballFiles).toContain('dist/src/stdlib/sysprep.js');
    expect(tarballFiles).toContain('dist/src/stdlib/sysprep.d.ts');
    expect(tarballFiles).toContain('dist/src/spec/spec.json');
    expect(tarballFiles).toContain('dist/guests/libguestfs/optional-packages.json');
    const stray = tarballFiles.filter((f) => /^(test|testdata|bench|scripts|\.ci|src)\//.test(f) || f.endsWith('.map'));
    expect(stray).toEqual([]);
  });

  it('installs a working CLI: npx guestsh --version', () => {
    const r = spawnSync('npx', ['--no-install', 'guestsh', '--version'], { cwd: project, encoding: 'utf8', timeout: scaled(60_000) });
    expect(r.stderr).not.toMatch(/Cannot find module|ERR_/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^guestsh \d+\.\d+\.\d+ \(libguestfs-1\.48 appliance\)/);
  });

  it('exports the standard library as subpaths a Node program can import', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "const m = await import('guestsh/sysprep'); console.log(typeof m.sysprep)"], { cwd: project, encoding: 'utf8', timeout: scaled(60_000) });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function');
  });

  it('runs a real read-only session through the library', async () => {
    const image = await ensureImage('debian');
    const program = join(project, 'list.mjs');
    writeFileSync(
      program,
      `import { Session } from 'guestsh';
const s = new Session();
try {
  await s.addDrive(process.argv[2], { readonly: true, format: 'raw' });
  await s.launch();
  console.log(JSON.stringify(await s.g.listFilesystems()));
} finally {
  await s.close();
}
`,
    );
    const r = spawnSync(process.execPath, [program, image], { cwd: project, encoding: 'utf8', timeout: scaled(300_000) });
    expect(r.status, r.stderr).toBe(0);
    const filesystems = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
    expect(Object.values(filesystems)).toContain('ext4');
  });

  it("type-checks a program and a recipe against the shipped types, and refuses a wrong call", () => {
    writeFileSync(
      join(project, 'program.ts'),
      `import { Session, runRecipe, type RunResult } from 'guestsh';
import { sysprep } from 'guestsh/sysprep';
export async function go(image: string): Promise<RunResult> {
  const s = new Session();
  await s.addDrive(image, { readonly: true });
  const fs: Record<string, string> = await s.g.listFilesystems();
  void fs; void sysprep;
  return runRecipe({ recipe: 'guestsh/inspect', images: [{ path: image, readonly: true }], inspect: true });
}
`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(REPO, 'node_modules', '@types')] }, files: ['program.ts'] }),
    );
    const ok = spawnSync(process.execPath, [TSC, '-p', project], { cwd: project, encoding: 'utf8', timeout: scaled(120_000) });
    expect(ok.stdout + ok.stderr).toBe('');
    expect(ok.status).toBe(0);

    writeFileSync(join(project, 'program.ts'), `import { Session } from 'guestsh';\nexport const wrong = (s: Session) => s.g.mkdir(42);\n`);
    const bad = spawnSync(process.execPath, [TSC, '-p', project], { cwd: project, encoding: 'utf8', timeout: scaled(120_000) });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/program\.ts\(2,\d+\): error TS2345/);
  });

  it('a recipe made by init-recipe type-checks through the installed package (no paths into a checkout)', () => {
    const recipes = join(project, 'recipes');
    const r = spawnSync(join(project, 'node_modules', '.bin', 'guestsh'), ['init-recipe', 'tidy', recipes], { cwd: project, encoding: 'utf8', timeout: scaled(60_000) });
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(recipes).sort()).toEqual(['guestsh-env.d.ts', 'tidy.gfs.ts', 'tsconfig.json']);
    const check = spawnSync(process.execPath, [TSC, '-p', recipes], { cwd: recipes, encoding: 'utf8', timeout: scaled(120_000) });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
    expect(existsSync(join(recipes, 'node_modules'))).toBe(false);
  });
});
