// Shared by the tests: per-file temp dirs (so leaks are visible), host-side
// image building without mounting, hashing, process checks.
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Session } from '../src/runtime/session/session.js';
import type { Appliance } from '../src/runtime/appliance/build.js';
import { chooseAccel } from '../src/runtime/qemu/accel.js';
import { snapshotDir } from '../src/runtime/qemu/snapshot.js';
import { scaled } from './slowdown.js';

/**
 * Points TMPDIR at a fresh directory for this test file, so that whatever a
 * session leaves behind shows up in it. Returns the dir and a restore function.
 */
export function isolatedTmpdir(): { dir: string; leftovers: () => string[]; restore: () => void } {
  const previous = process.env.TMPDIR;
  const dir = mkdtempSync(join(tmpdir(), 'guestsh-test-'));
  process.env.TMPDIR = dir;
  return {
    dir,
    leftovers: () => readdirSync(dir).filter((f) => f.startsWith('guestsh-')),
    restore: () => {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function rawDisk(path: string, sizeMiB: number): string {
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', path, `${sizeMiB}M`]);
  return path;
}

/** An unpartitioned ext4 image holding `files` (and `symlinks`: name → target), built with mke2fs -d (no mount). */
export function ext4Image(path: string, sizeMiB: number, files: Record<string, string>, symlinks: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'guestsh-fsroot-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(root, name)), { recursive: true });
      writeFileSync(join(root, name), content);
    }
    for (const [name, target] of Object.entries(symlinks)) {
      mkdirSync(dirname(join(root, name)), { recursive: true });
      symlinkSync(target, join(root, name));
    }
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', root, path, `${sizeMiB}M`]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return path;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The processes running now, each with its parent and command line (from /proc). */
export function processes(): { pid: number; ppid: number; state: string; cmdline: string }[] {
  const out: { pid: number; ppid: number; state: string; cmdline: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command may hold spaces and parentheses; the fields after its closing ')' are fixed.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      out.push({ pid: Number(name), ppid: Number(ppid), state: state!, cmdline });
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/** qemu processes whose command line names `dir` (their run directory lies in it). */
export function qemuUnder(dir: string): number[] {
  return processes()
    .filter((p) => p.cmdline.startsWith('qemu-system') && p.cmdline.includes(dir))
    .map((p) => p.pid);
}

export const CLI = join(import.meta.dirname, '..', 'bin', 'guestsh.js');

/** Runs the guestsh CLI (bounded at 4 minutes, scaled) in `env` and returns its exit code and output. */
export function guestsh(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { timeout: scaled(240_000), env }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

/** Where a session with these settings looks for its saved appliance (tests plant corrupt ones there). */
export async function savedApplianceDir(s: Session, appliance: Appliance): Promise<string> {
  return snapshotDir({
    appliance,
    accel: (await chooseAccel(appliance.kernel, s.settings.backendSettings.includes('force_tcg'))).accel,
    memoryMiB: s.settings.memsize,
    smp: s.settings.smp,
    network: s.settings.network,
    verbose: s.settings.verbose,
    launchTimeoutMs: s.settings.launchTimeoutMs,
  });
}
