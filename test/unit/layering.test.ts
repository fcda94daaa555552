// The layering rules (.dependency-cruiser.cjs) hold for the tree, and they
// would catch a new upward import or cycle: each rule is shown failing on a
// small planted tree checked with the same configuration.

import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const depcruise = join(root, 'node_modules', '.bin', 'depcruise');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

/** Runs dependency-cruiser in `cwd` with the project's rules; returns the violations. */
async function violations(cwd: string): Promise<Violation[]> {
  const args = ['src', 'guests', '--config', join(root, '.dependency-cruiser.cjs'), '--output-type', 'json'];
  // depcruise exits non-zero when it finds violations; the JSON is printed either way.
  const out = await promisify(execFile)(depcruise, args, { cwd, maxBuffer: 64 << 20 }).catch(
    (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
  );
  const report = JSON.parse(out.stdout) as { summary: { violations: Violation[] } };
  return report.summary.violations;
}

const planted: string[] = [];
afterAll(() => {
  for (const dir of planted) rmSync(dir, { recursive: true, force: true });
});

/** A throwaway tree of `files` (path → source) beside the project's tsconfig. */
function plant(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'guestsh-layering-'));
  planted.push(dir);
  copyFileSync(join(root, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  mkdirSync(join(dir, 'guests'));
  writeFileSync(join(dir, 'guests', 'empty.ts'), 'export {};\n');
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), source);
  }
  return dir;
}

const rulesBroken = (vs: Violation[]): string[] => [...new Set(vs.map((v) => v.rule.name))].sort();

describe('layering', () => {
  it('holds for the tree: imports only point down, no cycles', async () => {
    const found = await violations(root);
    expect(found.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
  });

  it('fails on a spec module that imports the runtime', async () => {
    const dir = plant({
      'src/runtime/errors.ts': 'export class UsageError extends Error {}\n',
      'src/spec/index.ts': "import { UsageError } from '../runtime/errors.js';\nexport const e = UsageError;\n",
    });
    const found = await violations(dir);
    expect(rulesBroken(found)).toEqual(['spec-imports-only-down']);
    expect(found[0]).toMatchObject({ from: 'src/spec/index.ts', to: 'src/runtime/errors.ts' });
  });

  it('fails on the runtime importing the shell above it', async () => {
    const dir = plant({
      'src/repl/format.ts': 'export const format = (x: unknown): string => String(x);\n',
      'src/runtime/session/session.ts': "import { format } from '../../repl/format.js';\nexport const f = format;\n",
    });
    expect(rulesBroken(await violations(dir))).toEqual(['session-imports-only-down']);
  });

  it('fails on a type-only cycle inside one layer', async () => {
    const dir = plant({
      'src/commands/a.ts': "import type { B } from './b.js';\nexport interface A { b?: B }\n",
      'src/commands/b.ts': "import type { A } from './a.js';\nexport interface B { a?: A }\n",
    });
    expect(rulesBroken(await violations(dir))).toEqual(['no-circular']);
  });

  it('fails on a standard-library module reaching for the host', async () => {
    const dir = plant({
      'src/stdlib/sysprep.ts': "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n",
    });
    expect(rulesBroken(await violations(dir))).toEqual(['stdlib-runs-in-the-sandbox']);
  });

  it('fails on a module in a folder no layer names', async () => {
    const dir = plant({
      'src/runtime/errors.ts': 'export class UsageError extends Error {}\n',
      'src/runtime/pool/pool.ts': "import { UsageError } from '../errors.js';\nexport const e = UsageError;\n",
    });
    expect(rulesBroken(await violations(dir))).toEqual(['unlayered']);
  });

  it('fails on an import that does not resolve', async () => {
    const dir = plant({ 'src/repl/shell.ts': "import { x } from './missing.js';\nexport const y = x;\n" });
    expect(rulesBroken(await violations(dir))).toContain('not-to-unresolvable');
  });
});
