// Plumbing shared by the test-guest builders: running host tools, the cache
// directory, temp dirs, atomic publication, the per-output build lock and a
// tree walk.
//
// Cache keys hash the builder files, not this one, so nothing here may decide
// what goes into a guest: that belongs in the builders.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A build failure whose message is one line naming what failed and what to do. */
export class BuildError extends Error {
  override name = 'BuildError';
}

/** Debian package that provides each host tool the builders run. */
const PACKAGE_OF_TOOL: Record<string, string> = {
  debootstrap: 'debootstrap',
  sfdisk: 'fdisk',
  mke2fs: 'e2fsprogs',
  debugfs: 'e2fsprogs',
  dumpe2fs: 'e2fsprogs',
  'qemu-img': 'qemu-utils',
  dpkg: 'dpkg',
  e2fsck: 'e2fsprogs',
  tar: 'tar',
  zstd: 'zstd',
  umount: 'mount',
  rm: 'coreutils',
};

export function step(message: string): void {
  process.stderr.write(`testdata: ${message}\n`);
}

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function defaultCacheDir(): string {
  return process.env.GUESTSH_TESTDATA_CACHE ?? path.join(REPO_ROOT, '.cache', 'testdata');
}

/** Short content hash over files (by content, not name) and JSON-able parameters. */
export function cacheKey(files: string[], parameters: unknown): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(fs.readFileSync(file)).update('\0');
  hash.update(JSON.stringify(parameters));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Every path below `dir`, parents before children, without following
 * symlinks (Node's recursive readdir follows them: a guest's /dev/fd leads
 * into the host's /proc).
 */
export function walkTree(dir: string): string[] {
  const found: string[] = [];
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const entryPath = path.join(current, entry.name);
      found.push(entryPath);
      if (entry.isDirectory()) pending.push(entryPath);
    }
  }
  return found;
}

export interface RunOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
}

// Children still running, so a signal to the builder can be passed on to them
// and the try/finally clean-ups get to run once they have exited.
const runningChildren = new Set<ChildProcess>();
let interruptedBy: NodeJS.Signals | undefined;

/** Run a host tool; resolves with its stdout, rejects with a one-line BuildError. */
export async function run(tool: string, args: string[], options: RunOptions = {}): Promise<string> {
  return (await runWithOutput(tool, args, options)).stdout;
}

/** `run` for tools that report some failures only on stderr (debugfs exits 0 when a command fails). */
export async function runWithOutput(
  tool: string,
  args: string[],
  options: RunOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  throwIfInterrupted();
  return runEvenIfInterrupted(tool, args, options);
}

function throwIfInterrupted(): void {
  if (interruptedBy) throw new BuildError(`build interrupted by ${interruptedBy}`);
}

/** `runWithOutput` for clean-up steps, which must still happen after a signal. */
function runEvenIfInterrupted(
  tool: string,
  args: string[],
  options: RunOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, {
      cwd: options.cwd,
      env: { ...process.env, LC_ALL: 'C', ...options.env },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    runningChildren.add(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    if (options.input !== undefined) {
      // A tool that exits without reading its input breaks the pipe; 'close' reports why it exited.
      child.stdin!.on('error', () => {});
      child.stdin!.end(options.input);
    }
    child.on('error', (error: NodeJS.ErrnoException) => {
      runningChildren.delete(child);
      if (error.code === 'ENOENT') {
        const pkg = PACKAGE_OF_TOOL[tool] ?? tool;
        reject(new BuildError(`${tool} not found: apt-get install -y ${pkg}`));
      } else {
        reject(new BuildError(`${tool} could not be started: ${error.message}`));
      }
    });
    child.on('close', (code, signal) => {
      runningChildren.delete(child);
      const output = { stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
      if (code === 0) return resolve(output);
      const why = signal ? `killed by ${signal}` : `exit ${code}`;
      reject(new BuildError(`${tool} failed (${why}): ${lastMeaningfulLine(output.stderr + output.stdout)}`));
    });
  });
}

/** The line most likely to say why a tool failed: its last error line, else its last line. */
function lastMeaningfulLine(output: string): string {
  const lines = output.split('\n').map((line) => line.trim()).filter(Boolean);
  const errorLine = [...lines].reverse().find((line) => /^(E:|error|.*: error)/i.test(line));
  return errorLine ?? lines.at(-1) ?? '(no output)';
}

let signalsForwarded = false;

/**
 * Make SIGINT/SIGTERM stop the running tool (and refuse to start more)
 * instead of killing node outright, so the awaiting builder sees a failure and
 * its finally blocks remove temp dirs (and unmount what debootstrap mounted)
 * before the process exits.
 */
export function forwardSignalsToChildren(): void {
  if (signalsForwarded) return;
  signalsForwarded = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      step(`${signal} received: stopping and cleaning up`);
      interruptedBy = signal;
      for (const child of runningChildren) child.kill(signal);
    });
  }
}

const TEMP_PREFIX = '.tmp-';

/** Create a temp dir in `parent` (same filesystem as the outputs, so rename is atomic). */
export function makeTempDir(parent: string, label: string): string {
  fs.mkdirSync(parent, { recursive: true });
  return fs.mkdtempSync(path.join(parent, `${TEMP_PREFIX}${process.pid}-${label}-`));
}

/** Mount points at or below `dir`, deepest first (debootstrap mounts /proc, /sys, /dev in its target). */
function mountsBelow(dir: string): string[] {
  const mountInfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const unescape = (field: string) =>
    field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return mountInfo
    .split('\n')
    .map((line) => unescape(line.split(' ')[4] ?? ''))
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

/**
 * Remove a build tree. Anything still mounted inside it is detached first and
 * rm stays on one filesystem, so a leftover bind mount of the host's /dev can
 * never be deleted through the tree.
 */
export async function removeTree(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  for (const mountPoint of mountsBelow(dir)) await runEvenIfInterrupted('umount', ['--lazy', mountPoint]);
  await runEvenIfInterrupted('rm', ['-rf', '--one-file-system', dir]);
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove temp dirs left in the cache by builders that were killed outright (SIGKILL, power loss). */
export async function removeAbandonedTempDirs(cacheDir: string): Promise<void> {
  if (!fs.existsSync(cacheDir)) return;
  for (const entry of fs.readdirSync(cacheDir)) {
    const pid = Number(/^\.tmp-(\d+)-/.exec(entry)?.[1]);
    if (pid && !processIsAlive(pid)) {
      step(`removing ${entry} left by a killed build`);
      await removeTree(path.join(cacheDir, entry));
    }
  }
}

/**
 * Move a finished temp output to its final name. If a concurrent builder got
 * there first its result is kept and ours is dropped: both came from the same
 * cache key.
 */
export async function publish(tempPath: string, finalPath: string): Promise<void> {
  try {
    fs.renameSync(tempPath, finalPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !fs.existsSync(finalPath)) throw error;
    await removeTree(tempPath);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Run `build` unless `finalPath` already exists, holding a lock file so that
 * parallel test workers wait for one build instead of each running their own.
 * A lock whose owner has died is taken over.
 */
export async function buildOnce(finalPath: string, build: () => Promise<void>): Promise<void> {
  if (fs.existsSync(finalPath)) return;
  const lockPath = `${finalPath}.lock`;
  let announcedWait = false;
  for (;;) {
    throwIfInterrupted();
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let owner: number;
    try {
      owner = Number(fs.readFileSync(lockPath, 'utf8').trim());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw error;
    }
    // 0 means the owner has created the lock but not yet written its pid.
    if (owner && !processIsAlive(owner)) {
      fs.rmSync(lockPath, { force: true });
      continue;
    }
    if (!announcedWait) {
      step(`waiting for pid ${owner} to finish building ${path.basename(finalPath)}`);
      announcedWait = true;
    }
    await sleep(500);
  }
  try {
    if (!fs.existsSync(finalPath)) await build();
  } finally {
    fs.rmSync(lockPath, { force: true });
  }
}
