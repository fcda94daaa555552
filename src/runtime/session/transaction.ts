// All-or-nothing writes to a disk image. A read-write session never opens the
// user's image for writing: qemu writes into a qcow2 overlay beside it, and
// only a successful end merges the overlay into the image. Beside IMAGE:
//
//   IMAGE.guestsh-lock      the writer's pid; one writer at a time
//   IMAGE.guestsh-overlay   the session's writes (qcow2, backed by IMAGE)
//   IMAGE.guestsh-journal   exists exactly while a merge is under way
//
// A merge (qemu-img commit -d) copies every overlay cluster into the image and
// leaves the overlay intact, so running it again after an interruption gives
// the same image: recovery rolls forward by repeating it. An overlay with no
// journal and no live writer is an abandoned run: it is deleted and the image,
// never written, is as it was.

import { closeSync, fsyncSync, openSync, rmSync } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { execa } from 'execa';
import { UsageError } from '../errors.js';
import { createOverlay } from '../qemu/img.js';

export interface TxFiles {
  image: string;
  lock: string;
  overlay: string;
  journal: string;
}

export function txFiles(image: string): TxFiles {
  const abs = resolve(image);
  return { image: abs, lock: `${abs}.guestsh-lock`, overlay: `${abs}.guestsh-overlay`, journal: `${abs}.guestsh-journal` };
}

interface Journal {
  image: string;
  overlay: string;
  format: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
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
  const fd = openSync(resolve(path, '..'), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function lockHolder(f: TxFiles): Promise<number | null> {
  const text = await readFile(f.lock, 'utf8').catch(() => null);
  if (text === null) return null;
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : null;
}

/** Merges the overlay into the image; safe to repeat after any interruption. */
async function merge(j: Journal): Promise<void> {
  try {
    await execa('qemu-img', ['commit', '-q', '-d', '-f', 'qcow2', j.overlay]);
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? String(e)).trim().split('\n').pop();
    throw new UsageError(`merging the changes into '${j.image}' failed (${msg}); run 'guestsh recover ${j.image}' to finish it`);
  }
  fsyncPath(j.image);
}

async function finish(f: TxFiles, j: Journal): Promise<void> {
  // The overlay is deleted only after a complete merge, so a journal without
  // an overlay means only the cleanup below was interrupted.
  if (await exists(f.overlay)) await merge(j);
  await rm(f.overlay, { force: true });
  await rm(f.journal, { force: true });
  fsyncDir(f.journal);
}

export type RecoveryOutcome = 'clean' | 'rolled-forward' | 'discarded-abandoned-run';

/**
 * Brings an image to a consistent state: completes an interrupted merge, or
 * deletes an abandoned run's overlay. Refuses while a live writer holds it.
 */
export async function recover(image: string): Promise<RecoveryOutcome> {
  const f = txFiles(image);
  const holder = await lockHolder(f);
  if (holder !== null) {
    throw new UsageError(`'${image}' is open for writing by guestsh (pid ${holder}); wait for it to finish or open the image with --ro`);
  }
  // A journal still being written when the writer died: the merge had not started.
  await rm(`${f.journal}.tmp`, { force: true });
  const journal = await readFile(f.journal, 'utf8').catch(() => null);
  if (journal !== null) {
    await finish(f, JSON.parse(journal) as Journal);
    await rm(f.lock, { force: true });
    return 'rolled-forward';
  }
  if (await exists(f.overlay)) {
    await rm(f.overlay, { force: true });
    await rm(f.lock, { force: true });
    return 'discarded-abandoned-run';
  }
  await rm(f.lock, { force: true });
  return 'clean';
}

export interface TxStatus {
  writerPid: number | null;
  pendingOverlay: boolean;
  interruptedMerge: boolean;
}

export async function txStatus(image: string): Promise<TxStatus> {
  const f = txFiles(image);
  return {
    writerPid: await lockHolder(f),
    pendingOverlay: await exists(f.overlay),
    interruptedMerge: await exists(f.journal),
  };
}

/** One writer's transaction on one image. */
export class Transaction {
  private state: 'open' | 'committing' | 'committed' | 'discarded' = 'open';

  private constructor(
    readonly files: TxFiles,
    readonly format: string,
    /** What recovery had to do before this transaction could start. */
    readonly recovered: RecoveryOutcome,
  ) {}

  static async begin(image: string, format: string): Promise<Transaction> {
    const f = txFiles(image);
    const recovered = await recover(image);
    try {
      await writeFile(f.lock, `${process.pid}\n`, { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new UsageError(`cannot lock '${image}' for writing: ${(e as Error).message}`);
      }
      const holder = await lockHolder(f);
      throw new UsageError(
        holder === null
          ? `'${image}' was locked a moment ago by another guestsh; try again`
          : `'${image}' is open for writing by guestsh (pid ${holder}); wait for it to finish or open the image with --ro`,
      );
    }
    try {
      await createOverlay(f.image, format, f.overlay);
    } catch (e) {
      await rm(f.lock, { force: true });
      throw e;
    }
    return new Transaction(f, format, recovered);
  }

  get open(): boolean {
    return this.state === 'open';
  }

  /**
   * Merges the overlay into the image. qemu must have closed it first. `top`
   * is the active layer when savepoints stacked layers over the overlay:
   * they are folded into the overlay first (the image is not touched yet, so
   * an interruption there is an abandoned run, discarded on the next open).
   */
  async commit(top: string = this.files.overlay): Promise<void> {
    if (this.state !== 'open') throw new UsageError(`commit: the transaction on '${this.files.image}' is already ${this.state}`);
    this.state = 'committing';
    if (top !== this.files.overlay) {
      try {
        await execa('qemu-img', ['commit', '-q', '-f', 'qcow2', '-b', this.files.overlay, top]);
      } catch (e) {
        this.state = 'open';
        const msg = ((e as { stderr?: string }).stderr ?? String(e)).trim().split('\n').pop();
        throw new UsageError(`folding savepoint layers of '${this.files.image}' failed: ${msg}`);
      }
    }
    const j: Journal = { image: this.files.image, overlay: this.files.overlay, format: this.format };
    // The journal appears whole (written aside, then renamed) and durable
    // before the image is touched: from here on, any interruption is
    // completed by the next open.
    const draft = `${this.files.journal}.tmp`;
    await writeFile(draft, JSON.stringify(j));
    fsyncPath(draft);
    await rename(draft, this.files.journal);
    fsyncDir(this.files.journal);
    await finish(this.files, j);
    this.state = 'committed';
    await rm(this.files.lock, { force: true });
  }

  /** Throws the session's writes away; the image was never written. */
  async discard(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'discarded';
    await rm(this.files.overlay, { force: true });
    await rm(this.files.lock, { force: true });
  }

  /**
   * Synchronous discard for process exit. A merge under way is left to the
   * journal: the next open completes it.
   */
  discardNow(): void {
    if (this.state !== 'open') return;
    this.state = 'discarded';
    rmSync(this.files.overlay, { force: true });
    rmSync(this.files.lock, { force: true });
  }
}
