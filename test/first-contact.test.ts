// What a new user meets first: the starter recipe runs exactly as its header
// comment says; a recipe with a type error is refused before anything
// launches (file:line:col, exit 2), with --no-typecheck to run it anyway;
// reading (a script; recipes in recipe.test.ts) leaves an image byte-identical although it was
// mounted read-write, and `commit` says what it merged.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureImage } from '../testdata/index.js';
import { guestsh, isolatedTmpdir, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => tmp.restore());

let img = '';

beforeAll(async () => {
  img = join(tmp.dir, 'guest.img');
  execFileSync('cp', ['--sparse=always', await ensureImage('debian'), img]);
}, scaled(600_000));

describe('init-recipe', () => {
  it('writes a starter that runs as its header says', async () => {
    const dir = join(tmp.dir, 'starter');
    const made = await guestsh(['init-recipe', 'tidy', dir]);
    expect(made.code, made.stderr).toBe(0);
    const recipe = join(dir, 'tidy.gfs.ts');
    const [first] = readFileSync(recipe, 'utf8').split('\n').filter((l) => l.startsWith('//   guestsh run'));
    // The header's first command, with the user's disk and the recipe's path filled in.
    const words = first!.replace('//   guestsh ', '').trim().split(/\s+/).map((w) => (w === 'disk.img' ? img : w === 'tidy.gfs.ts' ? recipe : w));
    expect(words).toContain('--dry-run');
    const before = await sha256(img);
    const dry = await guestsh(words);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/found debian 12/);
    expect(dry.stdout).toMatch(/\/etc\/hostname/);
    expect(await sha256(img)).toBe(before);
  }, scaled(600_000));

  it('writes a tsconfig with no path of this machine in it', async () => {
    const dir = join(tmp.dir, 'starter-config');
    expect((await guestsh(['init-recipe', 'x', dir])).code).toBe(0);
    const config = readFileSync(join(dir, 'tsconfig.json'), 'utf8');
    expect(config).not.toMatch(/"paths"|\/src\/|\/dist\//);
    expect(JSON.parse(config).compilerOptions.customConditions).toEqual(['guestsh-recipe']);
  });
});

describe('a type error in a recipe', () => {
  const source = "import type { RecipeContext } from 'guestsh';\nexport default async ({ g }: RecipeContext) => {\n  await g.mkdri('/x');\n};\n";
  const untyped = "export default async ({ g, log }) => {\n  log('start');\n  await g.mkdir(42);\n};\n";

  it('is reported at its line and column before anything launches, with exit 2', async () => {
    const file = join(tmp.dir, 'typo.gfs.ts');
    writeFileSync(file, source);
    // The image does not exist: a launch would fail, with exit 4.
    const r = await guestsh(['run', '-a', join(tmp.dir, 'missing.img'), file]);
    expect(r.stderr).toMatch(/typo\.gfs\.ts:3:11: TS2551: Property 'mkdri' does not exist .*Did you mean 'mkdir'\?.*nothing was launched/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.code).toBe(2);
  });

  it('is found in a recipe written without annotations, which is checked as the sandbox calls it', async () => {
    const file = join(tmp.dir, 'untyped.gfs.ts');
    writeFileSync(file, untyped);
    const r = await guestsh(['check', file]);
    expect(r.stderr).toMatch(/untyped\.gfs\.ts:3:17: TS2345: Argument of type 'number' is not assignable to parameter of type 'string'/);
    expect(r.code).toBe(2);
    writeFileSync(file, untyped.replace('42', "'/made'"));
    const ok = await guestsh(['check', file]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('--no-typecheck runs the recipe anyway (here: on to the launch, which fails on the missing image)', async () => {
    const file = join(tmp.dir, 'typo2.gfs.ts');
    writeFileSync(file, source);
    const r = await guestsh(['run', '--no-typecheck', '-a', join(tmp.dir, 'missing.img'), file]);
    expect(r.stderr).toMatch(/does not exist/);
    expect(r.code).toBe(4);
  });
});

describe('reading is not writing', () => {
  it('a script that only reads leaves the image byte-identical; one that writes commits and commit says so', async () => {
    const before = await sha256(img);
    const read = await guestsh(['-a', img, '-i', 'cat', '/etc/hostname']);
    expect(read.code, read.stderr).toBe(0);
    expect(await sha256(img)).toBe(before);

    const wrote = await guestsh(['-a', img, '-i', 'write', '/etc/first-contact', 'hello', ':', 'commit', ':', 'cat', '/etc/first-contact']);
    expect(wrote.code, wrote.stderr).toBe(0);
    expect(wrote.stdout).toMatch(/^committed the changes to .*guest\.img in \d+\.\d s$/m);
    expect(wrote.stdout).toMatch(/^hello$/m);
    expect(await sha256(img)).not.toBe(before);
  }, scaled(300_000));

  it('a recipe that declares readOnly runs on read-only images: its write fails, nothing is committed, no lock or overlay is made', async () => {
    const file = join(tmp.dir, 'reader.gfs.ts');
    writeFileSync(file, "export const readOnly = true;\nexport default async ({ g }) => {\n  await g.write('/etc/should-not-be', 'x');\n};\n");
    const before = await sha256(img);
    const r = await guestsh(['run', '-a', img, '-i', '--json', file]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { ok: boolean; committed: boolean; outputDir?: string; error: { message: string; line: number } };
    expect(doc).toMatchObject({ ok: false, committed: false, error: { line: 3 } });
    expect(doc.error.message).toMatch(/Read-only file system/);
    // The default output directory was removed (the recipe left nothing there), so the document names none.
    expect(doc.outputDir).toBeUndefined();
    expect(await sha256(img)).toBe(before);
    expect(readdirSync(tmp.dir).filter((f) => /\.guestsh-(lock|overlay|journal)$/.test(f))).toEqual([]);
  }, scaled(300_000));
});
