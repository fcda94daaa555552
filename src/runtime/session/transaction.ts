// All-or-nothing writes to a disk image. A read-write session never opens the
// user's image for writing: qemu writes into a qcow2 overlay, and only a
// successful end merges the overlay into the image. Beside the image's real
// path (symlinks resolved):
//
//   IMAGE.guestsh-lock      who holds the writer's lock (the lock itself is a
//                           flock on the image file: image-lock.ts)
//   IMAGE.guestsh-overlay   the session's writes (qcow2, backed by IMAGE)
//   IMAGE.guestsh-journal   exists exactly while a merge is under way
//
// A block device, or an image in a directory this user cannot write, gets
// them in the user's state directory instead (stateDir(), 0700), named from
// the image's real path (its base name and a hash of the path), so every
// guestsh of this user finds the same ones. Where they are is decided from
// what is on disk (txFiles): files an earlier run left in either place are
// found there first, so a directory that became writable, or stopped being,
// never hides an interrupted merge.
//
// A merge (qemu-img commit -d) copies every overlay cluster into the image and
// leaves the overlay intact, so running it again after an interruption gives
// the same image: recovery rolls forward by repeating it. An overlay with no
// journal and no live writer is an abandoned run: it is deleted and the image,
// never written, is as it was. Only the lock's holder creates or deletes any
// of these files, so nobody removes what another writer owns.
//
// Recovery trusts nothing it did not write: the overlay's path is derived
// from the image, never read from the journal; the journal must name this
// image by path, device and inode (a block device by its device number: its
// node's inode in /dev says nothing of the disk behind it); and the overlay must be a plain qcow2
// file of this user, backed by this very image, with no external data file,
// before anything is merged.
//
// Readers and writers: a --ro reader's qemu holds qemu's shared lock on the
// image, and a merge needs the image exclusively. A commit therefore waits
// (at most READER_WAIT_MS) for readers to close; if they stay, it fails
// before anything is written, the journal is withdrawn, and the changes stay
// in the session (the shell can `commit` again; a run discards them). A
// reader never opens an image whose merge is pending: it waits for a live
// merge to end, and refuses a merge that was cut short until it is recovered.

import { accessSync, chmodSync, constants, fsyncSync, lstatSync, mkdirSync, openSync, closeSync, realpathSync, rmSync, statSync, type Stats } from 'node:fs';
import { access, chmod, lstat, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { homedir, hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runTool } from '../tool.js';
import { CancelledError, UsageError } from '../errors.js';
import { createOverlay } from '../qemu/img.js';
import { ImageLock, readLockInfo, writerOf } from './image-lock.js';

/** What stops a commit before its first merge begins (after that, the merges complete). */
export interface StopOptions {
  signal?: AbortSignal | undefined;
  /** Hears a stop that has happened but not yet been heard, aborting `signal` (the CLI's Stop.confirm). */
  confirmStop?: (() => void) | undefined;
}

/** How long a commit waits for --ro readers of the image to close, and a reader for a live merge to end. */
export const READER_WAIT_MS = 10_000;

export interface TxFiles {
  image: string;
  lock: string;
  overlay: string;
  journal: string;
  /** Beside the image, or in the user's state directory. */
  place: 'beside' | 'state';
}

/** Where this user's sidecar files go when they cannot go beside their image: $XDG_STATE_HOME/guestsh/images. */
export function stateDir(): string {
  const xdg = process.env.XDG_STATE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(process.env.HOME || homedir(), '.local', 'state');
  return join(base, 'guestsh', 'images');
}

function named(image: string, stem: string, place: TxFiles['place']): TxFiles {
  return { image, lock: `${stem}.guestsh-lock`, overlay: `${stem}.guestsh-overlay`, journal: `${stem}.guestsh-journal`, place };
}

function present(path: string): boolean {
  return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
}

/** An earlier run's overlay or journal is there: the files are where it put them. */
function pending(f: TxFiles): boolean {
  return present(f.overlay) || present(f.journal);
}

function writableDir(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The transaction's files for the image's real path, so every name of one
 * file finds the same ones: beside a regular file in a directory this user
 * can write, in the state directory otherwise (a block device, a read-only
 * directory), and wherever an earlier run left an overlay or a journal.
 */
export function txFiles(image: string): TxFiles {
  let abs = resolve(image);
  try {
    abs = realpathSync(abs);
  } catch {
    // missing: the image checks say so
  }
  const beside = named(abs, abs, 'beside');
  const st = statSync(abs, { throwIfNoEntry: false });
  if (!st) return beside;
  if (st.isFile() && pending(beside)) return beside;
  const hash = createHash('sha256').update(abs).digest('hex').slice(0, 16);
  const aside = named(abs, join(stateDir(), `${basename(abs)}-${hash}`), 'state');
  if (!st.isFile() || pending(aside)) return aside;
  return writableDir(dirname(abs)) ? beside : aside;
}

/** The state directory, made if need be: this user's alone, since recovery acts on what it finds there. */
function ensureStateDir(f: TxFiles): void {
  if (f.place !== 'state') return;
  const dir = dirname(f.lock);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new UsageError(`cannot make guestsh's state directory ${dir} (${(e as NodeJS.ErrnoException).code}), where the changes to '${f.image}' are kept; set XDG_STATE_HOME to a directory you can write`);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.geteuid?.()) {
    throw new UsageError(`guestsh's state directory ${dir} is not a directory of yours; remove it, or set XDG_STATE_HOME to a directory you own`);
  }
  if (st.mode & 0o077) chmodSync(dir, 0o700);
}

/**
 * Whether `other` is the very image `st` describes: the same file (device
 * and inode), or for a block device the same device number.
 */
function sameImage(other: Stats, st: Stats): boolean {
  if (st.isBlockDevice()) return other.isBlockDevice() && other.rdev === st.rdev;
  return other.dev === st.dev && other.ino === st.ino;
}

/** What an image must be for any transaction step: something qemu can use as a disk. */
async function imageStat(image: string): Promise<Stats> {
  const st = await stat(image).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new UsageError(`disk image '${image}' does not exist`);
    throw new UsageError(`disk image '${image}' cannot be read: ${e.message}`);
  });
  if (st.isDirectory()) throw new UsageError(`'${image}' is a directory, not a disk image`);
  if (!st.isFile() && !st.isBlockDevice()) throw new UsageError(`'${image}' is not a disk image (not a regular file or a block device)`);
  return st;
}

const FORMAT = /^[a-z0-9]{2,16}$/;

interface Journal {
  guestsh: 'journal';
  version: 2;
  image: string;
  /** A file's identity. */
  dev?: number;
  ino?: number;
  /** A block device's. */
  rdev?: number;
  format: string;
}

function journalFor(f: TxFiles, st: Stats, format: string): Journal {
  const identity = st.isBlockDevice() ? { rdev: st.rdev } : { dev: st.dev, ino: st.ino };
  return { guestsh: 'journal', version: 2, image: f.image, ...identity, format };
}

/** Why `text` is not the journal of a merge into this image, or null when it is. */
function journalProblem(text: string, f: TxFiles, st: Stats): string | null {
  let j: Partial<Journal>;
  try {
    j = JSON.parse(text) as Partial<Journal>;
  } catch {
    return 'it is not JSON';
  }
  if (typeof j !== 'object' || j === null || j.guestsh !== 'journal' || j.version !== 2) return 'it is not in the format guestsh writes';
  if (j.image !== f.image) return `it names another image ('${String(j.image)}')`;
  if (st.isBlockDevice() ? j.rdev !== st.rdev : j.dev !== st.dev || j.ino !== st.ino) {
    return st.isBlockDevice() ? 'the device node names another device than when it was written' : 'the image file was replaced since it was written';
  }
  if (typeof j.format !== 'string' || !FORMAT.test(j.format)) return 'its image format is not valid';
  return null;
}

interface ChainEntry {
  filename: string;
  format: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: { type?: string; data?: { 'data-file'?: string } };
}

/**
 * Why the overlay beside the image is not one guestsh made for it, or null
 * when it is: a merge writes into the overlay's backing file and its data
 * file, so both must be exactly what the transaction set up.
 */
async function overlayProblem(f: TxFiles, st: Stats, format: string): Promise<string | null> {
  const ost = await lstat(f.overlay);
  if (!ost.isFile()) return 'it is not a regular file';
  if (ost.uid !== process.geteuid?.()) return 'it belongs to another user';
  if (ost.mode & 0o022) return 'others can write it';
  let chain: ChainEntry[];
  try {
    const { stdout } = await runTool('qemu-img', ['info', '--output=json', '-U', '--backing-chain', '-f', 'qcow2', f.overlay]);
    chain = JSON.parse(stdout) as ChainEntry[];
  } catch (e) {
    return `qemu-img cannot read it (${((e as { stderr?: string }).stderr ?? String(e)).trim().split('\n').pop()})`;
  }
  const [top, base] = chain;
  if (!top || top.format !== 'qcow2') return 'it is not a qcow2 file';
  if (chain.some((c) => c['format-specific']?.data?.['data-file'] !== undefined)) return 'it or its backing file has an external data file';
  if (!base || !top['full-backing-filename']) return 'it has no backing file';
  const bst = await stat(top['full-backing-filename']).catch(() => null);
  if (!bst || !sameImage(bst, st)) return `its backing file is '${top['full-backing-filename']}', not the image`;
  if (top['backing-filename-format'] !== format) return `its backing format is ${String(top['backing-filename-format'])}, not ${format}`;
  return null;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(path: string): void {
  const fd = openSync(dirname(path), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

function lastLine(e: unknown): string {
  return ((e as { stderr?: string }).stderr ?? String(e)).trim().split('\n').pop() ?? '';
}

/** qemu-img's refusal when another process (a reader's qemu, a VM) holds the image: nothing has been written. */
const IMAGE_IN_USE = /Failed to get "write" lock/;

type MergeResult = 'merged' | 'image-in-use';

async function mergeOnce(f: TxFiles): Promise<MergeResult> {
  try {
    await runTool('qemu-img', ['commit', '-q', '-d', '-f', 'qcow2', f.overlay]);
  } catch (e) {
    const err = e as { stderr?: string };
    if (IMAGE_IN_USE.test(err.stderr ?? '')) return 'image-in-use';
    throw new UsageError(`merging the changes into '${f.image}' failed (${lastLine(e)}); run 'guestsh recover ${f.image}' to finish it`);
  }
  fsyncPath(f.image);
  return 'merged';
}

/** Repeats `attempt` while another process holds the image, at most READER_WAIT_MS; false if it never let go. */
async function untilNotInUse(attempt: () => Promise<MergeResult>): Promise<boolean> {
  const deadline = Date.now() + READER_WAIT_MS;
  for (let pause = 50; ; pause = Math.min(pause * 2, 1000)) {
    if ((await attempt()) === 'merged') return true;
    if (Date.now() >= deadline) return false;
    await sleep(pause);
  }
}

async function writeJournal(f: TxFiles, j: Journal): Promise<void> {
  // The journal appears whole (written aside, then renamed) and durable
  // before the image is touched: from then on, an interruption is completed
  // by the next open.
  const draft = `${f.journal}.tmp`;
  await writeFile(draft, JSON.stringify(j), { mode: 0o600 });
  fsyncPath(draft);
  await rename(draft, f.journal);
  fsyncDir(f.journal);
}

async function withdrawJournal(f: TxFiles): Promise<void> {
  await rm(f.journal, { force: true });
  fsyncDir(f.journal);
}

async function finish(f: TxFiles): Promise<void> {
  await rm(f.overlay, { force: true });
  await rm(f.journal, { force: true });
  fsyncDir(f.journal);
}

/** Bytes a merge may newly allocate on the image's filesystem: the overlay's data, less what a raw image already has allocated. */
async function mergeNeeds(f: TxFiles, st: Stats, format: string): Promise<number> {
  const { stdout } = await runTool('qemu-img', ['map', '--output=json', '-f', 'qcow2', f.overlay]);
  const extents = JSON.parse(stdout) as { start: number; length: number; depth: number; data: boolean; zero: boolean }[];
  const data = extents.filter((x) => x.depth === 0 && (x.data || x.zero)).reduce((n, x) => n + x.length, 0);
  if (format !== 'raw') return data + Math.ceil(data / 16) + (1 << 20); // the format's own metadata grows too
  // The map covers the whole disk, so its end is the image's size.
  const size = extents.reduce((end, x) => Math.max(end, x.start + x.length), 0);
  return Math.min(data, Math.max(0, size - st.blocks * 512));
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Checks, before a merge writes anything, that it can finish: the image is writable and its filesystem has room. */
async function preflight(f: TxFiles, st: Stats, format: string): Promise<void> {
  await access(f.image, constants.W_OK).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot commit into '${f.image}': it cannot be written (${e.code}); the image is untouched`);
  });
  if (!st.isFile()) return;
  const needs = await mergeNeeds(f, st, format);
  const fs = await statfs(dirname(f.image));
  const free = (process.geteuid?.() === 0 ? fs.bfree : fs.bavail) * fs.bsize;
  if (needs > free) {
    throw new UsageError(
      `not enough space to commit into '${f.image}': the merge may need ${mib(needs)} and its filesystem has ${mib(free)} free; the image is untouched: free some space and commit again`,
    );
  }
}

/** Refuses to write an image that cannot be written, before a session is spent on it. */
async function checkWritable(f: TxFiles, image: string): Promise<void> {
  await access(f.image, constants.W_OK).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`'${image}' cannot be written (${e.code}: read-only, immutable or not yours); open it with --ro to read it`);
  });
  // Only an earlier run's files keep the transaction beside an image whose directory is not writable (txFiles).
  if (f.place !== 'beside') return;
  await access(dirname(f.image), constants.W_OK).catch(() => {
    throw new UsageError(
      `an earlier run left its changes to '${image}' beside it in ${dirname(f.image)}, which cannot be written now; make the directory writable and run 'guestsh recover ${image}'`,
    );
  });
}

async function holderMessage(f: TxFiles, st: Stats, image: string): Promise<string> {
  const pid = await writerOf(st);
  const info = await readLockInfo(f.lock);
  const who = pid !== null ? `guestsh (pid ${pid})` : info ? `guestsh (pid ${info.pid} on ${info.host})` : 'another guestsh';
  return `'${image}' is open for writing by ${who}; wait for it to finish or open the image with --ro`;
}

async function takeLock(f: TxFiles, st: Stats, image: string): Promise<ImageLock> {
  ensureStateDir(f);
  let lock: ImageLock | null;
  try {
    lock = ImageLock.tryTake(f.image, f.lock);
  } catch (e) {
    throw new UsageError(`cannot lock '${image}' for writing: ${(e as Error).message}`);
  }
  if (!lock) throw new UsageError(await holderMessage(f, st, image));
  return lock;
}

export type RecoveryOutcome = 'clean' | 'rolled-forward' | 'discarded-abandoned-run';

function refused(f: TxFiles, what: string, why: string): UsageError {
  return new UsageError(
    `'${what}' is not what guestsh wrote for '${f.image}' (${why}); guestsh will not act on it: find out who put it there, then move it away or run 'guestsh recover --abandon ${f.image}'`,
  );
}

/** Recovery with the writer's lock held. */
async function recoverLocked(f: TxFiles, st: Stats): Promise<RecoveryOutcome> {
  // A journal still being written when the writer died: the merge had not started.
  await rm(`${f.journal}.tmp`, { force: true });
  const text = await readFile(f.journal, 'utf8').catch(() => null);
  if (text !== null) {
    const problem = journalProblem(text, f, st);
    if (problem) throw refused(f, f.journal, problem);
    // The overlay is deleted only after a complete merge, so a journal
    // without an overlay means only the cleanup was interrupted.
    if (await exists(f.overlay)) {
      const format = (JSON.parse(text) as Journal).format;
      const bad = await overlayProblem(f, st, format);
      if (bad) throw refused(f, f.overlay, bad);
      // The one holding it may be the interrupted writer's own qemu-img, finishing the merge.
      if (!(await untilNotInUse(() => mergeOnce(f)))) {
        throw new UsageError(`cannot complete the interrupted commit into '${f.image}': another process (a --ro reader or a VM) has it open; close it and run 'guestsh recover ${f.image}'`);
      }
    }
    await finish(f);
    return 'rolled-forward';
  }
  if (await exists(f.overlay)) {
    await rm(f.overlay, { force: true });
    return 'discarded-abandoned-run';
  }
  return 'clean';
}

export type RecoverMode = 'recover' | 'abandon';
export type RecoverVerbOutcome = RecoveryOutcome | 'abandoned-interrupted-commit';

/**
 * Brings an image to a consistent state: completes an interrupted merge, or
 * deletes an abandoned run's overlay. Refuses while a live writer holds it.
 * 'abandon' drops a pending merge without completing it (the way out of a
 * merge that can never finish; the image may hold part of it).
 */
export async function recover(image: string, mode: RecoverMode = 'recover'): Promise<RecoverVerbOutcome> {
  const f = txFiles(image);
  const st = await imageStat(image);
  const lock = await takeLock(f, st, image);
  try {
    if (mode === 'recover') return await recoverLocked(f, st);
    await rm(`${f.journal}.tmp`, { force: true });
    const pending = await exists(f.journal);
    const overlay = await exists(f.overlay);
    await finish(f);
    return pending ? 'abandoned-interrupted-commit' : overlay ? 'discarded-abandoned-run' : 'clean';
  } finally {
    lock.release();
  }
}

export interface TxStatus {
  writerPid: number | null;
  /**
   * The lock note names a guestsh on another host (images on shared
   * storage): its lock is not in this host's /proc/locks and its pid means
   * nothing here, so it is never taken for dead. Absent otherwise.
   */
  otherHostWriter?: { host: string; pid: number } | undefined;
  pendingOverlay: boolean;
  interruptedMerge: boolean;
}

/** The writer another host's lock note names, if the note is another host's. */
async function otherHostWriter(f: TxFiles): Promise<{ host: string; pid: number } | undefined> {
  const info = await readLockInfo(f.lock);
  return info && info.host !== hostname() ? { host: info.host, pid: info.pid } : undefined;
}

export async function txStatus(image: string): Promise<TxStatus> {
  const f = txFiles(image);
  const st = await imageStat(image);
  const writerPid = await writerOf(st);
  return {
    writerPid,
    otherHostWriter: writerPid === null ? await otherHostWriter(f) : undefined,
    pendingOverlay: await exists(f.overlay),
    interruptedMerge: await exists(f.journal),
  };
}

/**
 * A reader's check before it opens an image: never a half-merged one. A live
 * merge is waited for (bounded); one cut short must be recovered first.
 */
export async function checkReadable(image: string): Promise<void> {
  const f = txFiles(image);
  if (!(await exists(f.journal))) return;
  const st = await imageStat(image);
  // A merge from another host (shared storage) shows only in its lock note: waited for like a live one, never judged dead.
  const remote = await otherHostWriter(f);
  for (let waited = 0; await exists(f.journal); waited += 100) {
    if (remote === undefined && (await writerOf(st)) === null) {
      throw new UsageError(`'${image}' has an interrupted commit: it reads half-merged until 'guestsh recover ${image}' completes it; run that, then open it again`);
    }
    if (waited >= READER_WAIT_MS) {
      const who = remote ? `guestsh pid ${remote.pid} on ${remote.host} (if that one died, 'guestsh recover ${image}' completes its commit)` : 'another guestsh';
      throw new UsageError(`'${image}' is being committed into by ${who}; try again when it has finished`);
    }
    await sleep(100);
  }
}

/** One writer's transaction on one image. */
export class Transaction {
  private state: 'open' | 'committing' | 'committed' | 'interrupted' | 'discarded' = 'open';

  private constructor(
    readonly files: TxFiles,
    readonly format: string,
    private readonly identity: Stats,
    private readonly lock: ImageLock,
    /** What recovery had to do before this transaction could start. */
    readonly recovered: RecoveryOutcome,
  ) {}

  static async begin(image: string, format: string): Promise<Transaction> {
    const f = txFiles(image);
    const st = await imageStat(image);
    await checkWritable(f, image);
    const lock = await takeLock(f, st, image);
    try {
      const recovered = await recoverLocked(f, st);
      await createOverlay(f.image, format, f.overlay);
      // Recovery refuses an overlay others could have written.
      await chmod(f.overlay, 0o600);
      return new Transaction(f, format, st, lock, recovered);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  get open(): boolean {
    return this.state === 'open';
  }

  /**
   * Merges the overlay into the image. qemu must have closed it first. `top`
   * is the active layer when savepoints stacked layers over the overlay:
   * they are folded into the overlay first (the image is not touched yet, so
   * an interruption there is an abandoned run, discarded on the next open).
   * `stop.signal` aborts it up to the moment the merge starts (`confirmStop`
   * is asked just before), never after; an
   * aborted or refused commit leaves the transaction open, so it can be
   * committed again or discarded.
   */
  async commit(top: string = this.files.overlay, stop?: StopOptions): Promise<void> {
    if (this.state !== 'open') throw new UsageError(`commit: the transaction on '${this.files.image}' is already ${this.state}`);
    this.state = 'committing';
    try {
      if (top !== this.files.overlay) {
        try {
          await runTool('qemu-img', ['commit', '-q', '-f', 'qcow2', '-b', this.files.overlay, top]);
        } catch (e) {
          throw new UsageError(`folding savepoint layers of '${this.files.image}' failed: ${lastLine(e)}`);
        }
      }
      await preflight(this.files, this.identity, this.format);
      const merged = await untilNotInUse(async () => {
        // The merge has not started: the image is untouched.
        stop?.confirmStop?.();
        if (stop?.signal?.aborted) throw new CancelledError('commit');
        await writeJournal(this.files, journalFor(this.files, this.identity, this.format));
        const result = await mergeOnce(this.files);
        // Refused before writing anything: no merge to complete later.
        if (result === 'image-in-use') await withdrawJournal(this.files);
        return result;
      });
      if (!merged) {
        throw new UsageError(
          `cannot commit into '${this.files.image}': another process (a guestsh --ro reader or a VM) has it open; the image is untouched: close the reader and commit again`,
        );
      }
    } catch (e) {
      if (await exists(this.files.journal)) {
        // A merge that failed midway: only recovery can complete it, and it
        // needs the lock, so this session lets go of it.
        this.state = 'interrupted';
        this.lock.release();
      } else {
        this.state = 'open';
      }
      throw e;
    }
    await finish(this.files);
    this.state = 'committed';
    this.lock.release();
  }

  /** Throws the session's writes away; the image was never written. */
  async discard(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'discarded';
    await rm(this.files.overlay, { force: true });
    this.lock.release();
  }

  /**
   * Synchronous discard for process exit. A merge under way is left to the
   * journal: the next open completes it.
   */
  discardNow(): void {
    if (this.state !== 'open') return;
    this.state = 'discarded';
    rmSync(this.files.overlay, { force: true });
    this.lock.release();
  }
}
