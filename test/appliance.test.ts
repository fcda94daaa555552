// The appliance cache: keyed by what goes into the appliance (not the whole
// host's package state), built once however many builders race, and never
// deleted under a session that boots from it. Runs in a private cache
// (GUESTSH_CACHE), with real supermin builds (seconds each here).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { ensureAppliance, removeUnusedAppliances } from '../src/runtime/appliance/build.js';
import { packageClosure, recipePackages } from '../src/runtime/appliance/inputs.js';
import { chooseAccel } from '../src/runtime/qemu/accel.js';
import { optionalPackages, superminDirCandidates } from '../guests/libguestfs/appliance.js';
import { ext4Image, guestsh, isolatedTmpdir } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
const previousCache = process.env.GUESTSH_CACHE;
const cache = mkdtempSync(join(tmpdir(), 'guestsh-appliance-cache-'));
beforeAll(() => {
  process.env.GUESTSH_CACHE = cache;
});
afterAll(() => {
  if (previousCache === undefined) delete process.env.GUESTSH_CACHE;
  else process.env.GUESTSH_CACHE = previousCache;
  rmSync(cache, { recursive: true, force: true });
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

const superminDir = superminDirCandidates.find((d) => existsSync(d))!;
const memo = (): string => join(cache, 'appliance', 'inputs.key');

describe('the appliance cache', () => {
  it("is keyed by the appliance's own packages: the closure holds the recipe's packages and their dependencies, not unrelated ones", async () => {
    const roots = await recipePackages(superminDir);
    const closure = (await packageClosure(roots)).map((p) => p.split('=')[0]);
    const installed = new Set(execFileSync('dpkg-query', ['-W', '-f', '${Package}\n']).toString().trim().split('\n'));
    for (const p of roots.filter((r) => installed.has(r))) expect(closure).toContain(p);
    expect(closure).toContain('libc6'); // a dependency, named by no recipe file
    // Installed here for the tests, and no part of the appliance.
    for (const unrelated of ['tmux', 'libwin-hivex-perl', 'qemu-system-x86', 'supermin']) {
      expect(installed.has(unrelated), unrelated).toBe(true);
      expect(closure).not.toContain(unrelated);
    }
  });

  it('builds once when builders of one key race, and the key does not follow the package database', async () => {
    const logs: string[] = [];
    const [a, b] = await Promise.all([ensureAppliance((l) => logs.push(l)), ensureAppliance((l) => logs.push(l))]);
    expect(a.dir).toBe(b.dir);
    expect(logs.filter((l) => l.startsWith('building'))).toHaveLength(1);
    // Forget the remembered key (as after any package install): the same inputs give the same key, so no rebuild.
    const remembered = readFileSync(memo(), 'utf8');
    writeFileSync(memo(), remembered.replace(/:\d+(\.\d+)?\n/, ':1\n'));
    expect((await ensureAppliance((l) => logs.push(l))).dir).toBe(a.dir);
    expect(logs.filter((l) => l.startsWith('building'))).toHaveLength(1);
  });

  it('a rebuild for new inputs keeps the appliance two running sessions boot from, and removes it once they end', { timeout: scaled(600_000) }, async () => {
    const current = (await ensureAppliance()).dir;
    // An appliance of "older inputs": the current one under another key, which the remembered key points at.
    const old = join(dirname(current), basename(current).replace(/[0-9a-f]{16}$/, '0000000000000000'));
    execFileSync('cp', ['-a', '--sparse=always', current, old]);
    const remembered = readFileSync(memo(), 'utf8');
    writeFileSync(memo(), remembered.replace(/[0-9a-f]{16}\n$/, '0000000000000000\n'));
    const img = ext4Image(join(tmp.dir, 'guest.img'), 16, { 'a.txt': 'a\n' });
    const sessions = [new Session(), new Session()];
    // Cold boots: a saved snapshot of the copy would be one more thing the removal has to spare.
    for (const s of sessions) s.settings.snapshots = false;
    try {
      for (const s of sessions) await s.addDrive(img, { format: 'raw', readonly: true });
      await Promise.all(sessions.map((s) => s.launch()));
      // The inputs "change": the remembered key is forgotten, and the current appliance must be built anew.
      rmSync(memo());
      rmSync(current, { recursive: true, force: true });
      const logs: string[] = [];
      expect((await ensureAppliance((l) => logs.push(l))).dir).toBe(current);
      expect(logs.filter((l) => l.startsWith('building'))).toHaveLength(1);
      expect(existsSync(join(old, 'root'))).toBe(true);
      for (const s of sessions) {
        await s.g.mountRo('/dev/sda', '/');
        expect(await s.g.cat('/a.txt')).toBe('a\n');
      }
      await sessions[0]!.close();
      await removeUnusedAppliances();
      expect(existsSync(join(old, 'root'))).toBe(true); // the second still uses it
    } finally {
      for (const s of sessions) await s.close();
    }
    await removeUnusedAppliances();
    expect(readdirSync(dirname(current)).filter((n) => !n.startsWith('.') && n !== 'inputs.key')).toEqual([basename(current)]);
  });

  it('--version names the appliance, which optional packages it carries and what each adds, and the accelerator and why', async () => {
    const r = await guestsh(['--version'], { ...process.env, GUESTSH_CACHE: cache });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^guestsh \d+\.\d+\.\d+ \(libguestfs-1\.48 appliance\)$/);
    expect(lines[1]).toBe(`appliance: ${(await ensureAppliance()).dir}`);
    for (const p of optionalPackages) {
      const has = existsSync(join(superminDir, p.recipe));
      expect(lines.filter((l) => l.includes(` ${p.package}`)), p.package).toEqual([has ? `  with ${p.package}: ${p.adds}` : `  without ${p.package} (apt-get install ${p.package}): ${p.adds}`]);
    }
    expect(lines.at(-1)).toBe('accelerator: not probed yet (the first launch tries KVM, then falls back to TCG)');
    const forced = await guestsh(['--version'], { ...process.env, GUESTSH_CACHE: cache, GUESTSH_ACCEL: 'tcg' });
    expect(forced.stdout.trim().split('\n').at(-1)).toBe('accelerator: tcg (acceleration forced to tcg by GUESTSH_ACCEL)');
    // Once a launch has chosen, the verdict and its reason are shown.
    const choice = await chooseAccel((await ensureAppliance()).kernel);
    const after = await guestsh(['--version'], { ...process.env, GUESTSH_CACHE: cache });
    expect(after.stdout.trim().split('\n').at(-1)).toBe(`accelerator: ${choice.accel} (${choice.reason})`);
  });
});

