// The command line's side of transactions and recipes: commit on success,
// --discard, --dry-run, a failing command, `status`, `recover`, `run`.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { txFiles } from '../src/runtime/session/transaction.js';
import { ext4Image, isolatedTmpdir, sha256, guestsh } from './helpers.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  // Removed before the check, so a failing check does not leave the images behind too.
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

describe('command-line transactions', () => {
  it('--dry-run prints the changes and keeps the image; --discard keeps it; success commits; failure discards', async () => {
    const img = ext4Image(join(tmp.dir, 'cli.img'), 32, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const h0 = await sha256(img);
    const write = ['run', ':', 'mount', '/dev/sda', '/', ':', 'write', '/new.txt', 'new', ':', 'rm', '/a.txt'];

    const dry = await guestsh(['--format=raw', '-a', img, '--dry-run', ...write]);
    expect(dry.code).toBe(0);
    expect(dry.stdout.trim().split('\n')).toEqual(['- /dev/sda:/a.txt', '+ /dev/sda:/new.txt']);
    expect(await sha256(img)).toBe(h0);

    const dryJson = await guestsh(['--format=raw', '-a', img, '--dry-run', '--json', ...write]);
    expect(JSON.parse(dryJson.stdout.trim().split('\n').at(-1)!)).toEqual({
      changes: [
        { filesystem: '/dev/sda', path: '/a.txt', change: 'removed' },
        { filesystem: '/dev/sda', path: '/new.txt', change: 'added' },
      ],
    });

    expect((await guestsh(['--format=raw', '-a', img, '--discard', ...write])).code).toBe(0);
    expect(await sha256(img)).toBe(h0);

    const failing = await guestsh(['--format=raw', '-a', img, ...write, ':', 'cat', '/no-such-file']);
    expect(failing.code).toBe(1);
    expect(await sha256(img)).toBe(h0);

    expect((await guestsh(['--format=raw', '-a', img, ...write])).code).toBe(0);
    expect(await sha256(img)).not.toBe(h0);
    const check = await guestsh(['--format=raw', '--ro', '-a', img, 'run', ':', 'mount-ro', '/dev/sda', '/', ':', 'ls', '/']);
    expect(check.stdout.split('\n')).toEqual(['b.txt', 'lost+found', 'new.txt', '']);
  });

  it('status and recover report and clean up what an interrupted run left', async () => {
    const img = ext4Image(join(tmp.dir, 'st.img'), 16, {});
    const clean = await guestsh(['status', img]);
    expect(clean.stdout).toBe(`${img}: no writer; no pending changes\n`);
    // What a run killed before committing leaves: an overlay and a dead pid's lock.
    const f = txFiles(img);
    writeFileSync(f.overlay, '');
    writeFileSync(f.lock, '999999999\n');
    const st = await guestsh(['status', img, '--json']);
    expect(JSON.parse(st.stdout)).toEqual({ image: img, writerPid: null, pendingOverlay: true, interruptedMerge: false });
    const rec = await guestsh(['recover', img]);
    expect(rec.stdout).toBe(`${img}: removed an interrupted run's uncommitted changes (the image was never written)\n`);
    expect((await guestsh(['status', img])).stdout).toBe(`${img}: no writer; no pending changes\n`);
    expect((await guestsh(['status'])).code).toBe(2);
  });

  it("guestfish's `-a /dev/null` launches on a throwaway disk of the session's and writes nothing into /dev", async () => {
    const before = readdirSync('/dev').filter((f) => f.startsWith('null.'));
    const r = await guestsh(['-a', '/dev/null', 'run', ':', 'list-devices', ':', 'blockdev-getsize64', '/dev/sda']);
    // Notices (an appliance build, a snapshot being saved) may appear on a fresh machine; errors may not.
    expect(r.stderr).not.toMatch(/error/i);
    // libguestfs's stand-in for the null device: 4096 blank bytes (a disk of size 0 has no sector size in the guest).
    expect(r.stdout).toBe('/dev/sda\n4096\n');
    expect(r.code).toBe(0);
    expect(readdirSync('/dev').filter((f) => f.startsWith('null.'))).toEqual(before);
  });

  it('run executes a recipe against an image and commits it', async () => {
    const img = ext4Image(join(tmp.dir, 'recipe.img'), 16, {});
    const recipe = join(tmp.dir, 'hello.gfs.ts');
    writeFileSync(
      recipe,
      "export default async ({ g, params, log }: any) => {\n  await g.mount('/dev/sda', '/');\n  await g.write('/hello', `hi ${params.who}`);\n  log('wrote /hello');\n};\n",
    );
    const r = await guestsh(['run', '-a', img, '--format', 'raw', recipe, '--param', 'who=there']);
    expect(r.code).toBe(0);
    const check = await guestsh(['--format=raw', '--ro', '-a', img, 'run', ':', 'mount-ro', '/dev/sda', '/', ':', 'cat', '/hello']);
    expect(check.stdout).toBe('hi there\n');
    const bad = await guestsh(['run', '-a', img]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('run: name a recipe');
  });
});
