// `guestsh run -i` on an encrypted guest: the LUKS device is opened with the
// key from --keys-from-stdin before inspection, as the shell's -i does;
// without a key the run stops at setup (exit 4) and says how to give one.

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGuest, type LuksTruth } from '../testdata/index.js';
import { CLI, isolatedTmpdir } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => tmp.restore());

const LUKS_KEY = 'guestsh-luks-key';
let image = '';
let truth: LuksTruth;
let recipe = '';

function guestsh(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile('node', [CLI, ...args], { timeout: scaled(240_000) }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      done({ code, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

beforeAll(async () => {
  const images = await ensureGuest('luks');
  image = images.raw;
  truth = JSON.parse(readFileSync(images.truth, 'utf8')) as LuksTruth;
  recipe = join(tmp.dir, 'hostname.gfs.ts');
  writeFileSync(recipe, "export default async ({ g }: any) => ({ hostname: (await g.cat('/etc/hostname')).trim(), mounts: await g.mountpoints() });\n");
}, scaled(900_000));

describe('guestsh run -i on a LUKS guest', () => {
  it('opens the encrypted root with the key from stdin, inspects and mounts it', async () => {
    const r = await guestsh(['run', '--ro', '--format=raw', '-a', image, '-i', '--keys-from-stdin', recipe, '--json'], `${LUKS_KEY}\n`);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { ok: boolean; value: { hostname: string; mounts: Record<string, string> } };
    expect(result.ok).toBe(true);
    expect(result.value.hostname).toBe(truth.hostname);
    expect(Object.values(result.value.mounts).sort()).toEqual(truth.filesystems.map((f) => f.mountpoint).sort());
  });

  it('without a key, stops before the recipe and names --keys-from-stdin', async () => {
    const r = await guestsh(['run', '--ro', '--format=raw', '-a', image, '-i', recipe], '');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/--keys-from-stdin/);
  });
});
