// Where a read-write session keeps its transaction's files (lock note,
// overlay, journal) when they cannot go beside the image: a block device
// (a loop device here) and an image in a directory nobody may write (a
// read-only tmpfs, with a writable image file bind-mounted into it, since
// root ignores directory permissions but not a read-only mount). They go to
// the user's state directory ($XDG_STATE_HOME/guestsh/images, this file's
// own); the commit reaches the image, nothing appears beside it, `status`,
// `recover` and a second writer find the same files, and nothing is left
// once the session has ended. Needs root (loop devices, mounts): skipped
// with the reason otherwise.

import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateDir, txFiles } from '../src/runtime/session/transaction.js';
import { CLI, guestsh, isolatedTmpdir, rawDisk } from './helpers.js';

const tmp = isolatedTmpdir();
const state = join(tmp.dir, 'state');
const env = { ...process.env, XDG_STATE_HOME: state };
const loops: string[] = [];
const mounts: string[] = [];

/** Why this machine cannot run these tests, or null when it can. */
function unavailable(): string | null {
  if (process.geteuid?.() !== 0) return 'needs root: loop devices and mounts';
  try {
    const probe = rawDisk(join(tmp.dir, 'probe.img'), 1);
    const dev = execFileSync('losetup', ['-f', '--show', probe], { encoding: 'utf8' }).trim();
    execFileSync('losetup', ['-d', dev]);
    return null;
  } catch (e) {
    return `no loop device here (${(e as Error).message.split('\n')[0]})`;
  }
}
const why = unavailable();
if (why) console.warn(`sidecars.test.ts skipped: ${why}`);

function loopOver(file: string): string {
  const dev = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
  loops.push(dev);
  return dev;
}

/** A directory on a read-only tmpfs holding one writable image file: `file` bind-mounted over its placeholder. */
function readOnlyDirWith(file: string): { dir: string; image: string } {
  const dir = join(tmp.dir, 'ro');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', dir]);
  mounts.push(dir);
  const image = join(dir, 'disk.img');
  writeFileSync(image, '');
  execFileSync('mount', ['-o', 'remount,ro', dir]);
  execFileSync('mount', ['--bind', file, image]);
  mounts.push(image);
  return { dir, image };
}

afterAll(() => {
  // Innermost first; each step is tried whatever the one before did.
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', [m]);
    } catch {
      // already gone
    }
  }
  for (const l of loops) {
    try {
      execFileSync('losetup', ['-d', l]);
    } catch {
      // already gone
    }
  }
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

const MARK = 'written through guestsh';
const AT = 1 << 20;

function bytesAt(file: string, at: number, n: number): string {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, at);
    return b.toString('latin1');
  } finally {
    closeSync(fd);
  }
}

const stateFiles = (): string[] => readdirSync(stateDir(), { withFileTypes: true }).map((d) => d.name);

/**
 * One session writing MARK into `image` at 1 MiB, which, while it holds the
 * image, runs `guestsh status` and a second writer as host commands of its
 * script (their output lands in this session's stdout and stderr).
 */
function writeSession(image: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = join(tmp.dir, 'write.gfs');
  writeFileSync(
    script,
    [
      'run',
      `pwrite-device /dev/sda "${MARK}" ${AT}`,
      `!node ${CLI} status ${image}`,
      `!node ${CLI} --format=raw -a ${image} run || echo second writer refused`,
      '',
    ].join('\n'),
  );
  return guestsh(['--format=raw', '-a', image, '-f', script], env);
}

/** Error lines other than the second writer's refusal. */
const otherErrors = (stderr: string): string[] => stderr.split('\n').filter((l) => l && !/is open for writing by guestsh \(pid \d+\)/.test(l));

/** What a writer killed before its commit leaves: a transaction begun, its overlay written (with qemu-io), the process killed with SIGKILL. */
function killedWriter(image: string): void {
  const tx = join(import.meta.dirname, '..', 'dist', 'src', 'runtime', 'session', 'transaction.js');
  const code = [
    `const m = await import(${JSON.stringify(tx)});`,
    `const t = await m.Transaction.begin(${JSON.stringify(image)}, 'raw');`,
    `(await import('node:child_process')).execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a ${AT} 4k', t.files.overlay]);`,
    `process.kill(process.pid, 'SIGKILL');`,
  ].join(' ');
  expect(() => execFileSync('node', ['--input-type=module', '-e', code], { env, stdio: 'pipe' })).toThrow(/SIGKILL/);
}

describe.skipIf(why !== null)('sidecar files of an image they cannot sit beside', () => {
  beforeAll(() => {
    process.env.XDG_STATE_HOME = state;
  });

  it('a loop device added read-write: the commit reaches the device, the files live in the state directory and are gone after, nothing is made in /dev', async () => {
    const backing = rawDisk(join(tmp.dir, 'loop.img'), 8);
    const dev = loopOver(backing);
    const f = txFiles(dev);
    expect(f.place).toBe('state');
    expect(f.overlay.startsWith(`${stateDir()}/`)).toBe(true);
    const devBefore = readdirSync('/dev');

    const r = await writeSession(dev);
    expect(otherErrors(r.stderr)).toEqual([]);
    expect(r.code).toBe(0);
    // status, run while the session held the device, saw its lock and overlay in the state directory.
    expect(r.stdout).toMatch(new RegExp(`${dev}: open for writing by guestsh pid \\d+; uncommitted changes of the running session`));
    // A second writer met the same lock.
    expect(r.stderr).toMatch(new RegExp(`'${dev}' is open for writing by guestsh \\(pid \\d+\\)`));
    expect(r.stdout).toMatch(/second writer refused/);

    expect(bytesAt(backing, AT, MARK.length)).toBe(MARK);
    expect(readdirSync('/dev').filter((n) => n.includes('guestsh'))).toEqual([]);
    expect(readdirSync('/dev').length).toBe(devBefore.length);
    expect(stateFiles()).toEqual([]);
    // The state directory is the user's alone.
    expect(statSync(stateDir()).mode & 0o777).toBe(0o700);
  });

  it('an image in a read-only directory: the commit reaches it, nothing is made beside it, the state directory is empty after', async () => {
    const file = rawDisk(join(tmp.dir, 'under-ro.img'), 8);
    const { dir, image } = readOnlyDirWith(file);
    expect(() => writeFileSync(join(dir, 'probe'), '')).toThrow(/EROFS/);
    expect(txFiles(image).place).toBe('state');

    const r = await writeSession(image);
    expect(otherErrors(r.stderr)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${image}: open for writing by guestsh pid \\d+; uncommitted changes of the running session`));
    expect(r.stderr).toMatch(new RegExp(`'${image}' is open for writing by guestsh \\(pid \\d+\\)`));

    expect(bytesAt(file, AT, MARK.length)).toBe(MARK);
    expect(readdirSync(dir)).toEqual(['disk.img']);
    expect(stateFiles()).toEqual([]);
  });

  it('a writer killed on a loop device: status and recover find its overlay in the state directory, recover removes it, the device was never written', async () => {
    const backing = rawDisk(join(tmp.dir, 'killed.img'), 8);
    const dev = loopOver(backing);
    killedWriter(dev);
    const f = txFiles(dev);
    expect(stateFiles()).toContain(f.overlay.slice(stateDir().length + 1));

    const st = await guestsh(['status', dev], env);
    expect(st.stdout).toBe(`${dev}: no writer; abandoned changes of an interrupted run: the next open removes them (or run 'guestsh recover')\n`);
    const rec = await guestsh(['recover', dev], env);
    expect(rec.stdout).toBe(`${dev}: removed an interrupted run's uncommitted changes (the image was never written)\n`);
    expect(stateFiles()).toEqual([]);
    expect(bytesAt(backing, AT, MARK.length)).toBe('\0'.repeat(MARK.length));
  });

  it("an interrupted merge into a loop device: the journal names the device by its number; recover completes it, and refuses a journal of another device's number", async () => {
    const backing = rawDisk(join(tmp.dir, 'merge.img'), 8);
    const dev = loopOver(backing);
    const f = txFiles(dev);
    mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
    // What a writer killed inside its merge leaves: its overlay (here written with qemu-io) and its journal.
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', dev, '-F', 'raw', f.overlay]);
    execFileSync('chmod', ['600', f.overlay]);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${AT} 4k`, f.overlay]);
    const { rdev } = statSync(dev);
    writeFileSync(f.journal, JSON.stringify({ guestsh: 'journal', version: 2, image: dev, rdev: rdev + 1, format: 'raw' }));
    const refused = await guestsh(['recover', dev], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/is not what guestsh wrote .*the device node names another device than when it was written/);

    writeFileSync(f.journal, JSON.stringify({ guestsh: 'journal', version: 2, image: dev, rdev, format: 'raw' }));
    expect((await guestsh(['status', dev], env)).stdout).toMatch(/interrupted commit: the next open completes it/);
    const rec = await guestsh(['recover', dev], env);
    expect(rec.stdout).toBe(`${dev}: completed an interrupted commit\n`);
    expect(bytesAt(backing, AT, 4)).toBe('\x5a'.repeat(4));
    expect(stateFiles()).toEqual([]);
  });
});
