// The local pool of `guestsh batch`: up to `concurrency` images at once, each
// one `runRecipe` (its own session, resumed from the saved appliance, its own
// transaction: committed on success, the image untouched on failure), tried
// again up to `retries` times. Each image's outcome is one JSON line in the
// results file as soon as it is known; a committed image's fingerprint is
// recorded beside it first, so a re-run (after a crash too) skips exactly
// the images that finished.

import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Session } from '../session/session.js';
import { prepareRecipe } from '../recipe/sandbox.js';
import { releaseOutputDir, resolveRecipe, RecipeCompileFailed, runRecipe, sandboxOptions, type RunResult } from '../recipe/run.js';
import { UsageError } from '../errors.js';
import { recover } from '../session/transaction.js';
import { contentHash, currentFingerprint, DoneFile, doneFileOf, fingerprint, recipeDigest, runDigest, stampOf } from './fingerprint.js';
import type { BatchImage, BatchJob } from './job.js';

/** One image's line in the results file. */
export interface ImageResult {
  image: string;
  ok: boolean;
  committed: boolean;
  /** Not run: its fingerprint matched the record of a finished run. */
  skipped: boolean;
  /** How many changes the recipe reported (the length of the list it returned), or null when it returned none. */
  changes: number | null;
  seconds: number;
  error: string | null;
  attempts: number;
  /** Fingerprint of the image as the run left it (committed or skipped images). */
  fingerprint?: string | undefined;
}

/** What the pool tells whoever shows it. */
export interface BatchObserver {
  started(image: string, attempt: number): void;
  /** The running image's calls so far. */
  calls(image: string, calls: number): void;
  /** A line from the recipe's log or a notice of its session. */
  log(image: string, line: string): void;
  finished(r: ImageResult): void;
}

/** Compiles and links the recipe once, before any image is touched: its errors are the job's (exit 2), and its code is the fingerprint's. */
export async function recipeCodeDigest(recipe: string): Promise<string> {
  const src = await resolveRecipe({ recipe });
  const s = new Session();
  try {
    const prepared = await prepareRecipe({ ...sandboxOptions(src, {}, s, () => undefined) });
    if (!prepared.ok) throw new RecipeCompileFailed(prepared.result.failure!);
    prepared.dispose();
    return recipeDigest(prepared.linkedCode);
  } finally {
    await s.close();
    await releaseOutputDir(src);
  }
}

/** The results file: truncated when the batch starts, one synced line per image after. */
export class ResultsFile {
  private constructor(private readonly fd: number) {}

  static async create(path: string): Promise<ResultsFile> {
    await mkdir(dirname(path), { recursive: true });
    try {
      return new ResultsFile(openSync(path, 'w', 0o644));
    } catch (e) {
      throw new UsageError(`cannot write the results file '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  write(r: ImageResult): void {
    writeSync(this.fd, `${JSON.stringify(r)}\n`);
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

export interface BatchSummary {
  results: ImageResult[];
  ok: number;
  committed: number;
  skipped: number;
  failed: number;
  notRun: number;
  seconds: number;
}

export function summarize(results: ImageResult[], seconds: number): BatchSummary {
  const notRun = results.filter((r) => r.attempts === 0 && !r.skipped).length;
  return {
    results,
    ok: results.filter((r) => r.ok).length,
    committed: results.filter((r) => r.committed).length,
    skipped: results.filter((r) => r.skipped).length,
    failed: results.filter((r) => !r.ok).length - notRun,
    notRun,
    seconds,
  };
}

/** What one image's run needs from the job, also what a queue job carries. */
export interface ImageRun {
  image: BatchImage;
  recipe: string;
  mount: BatchJob['mount'];
  timeoutMs: number | undefined;
  memoryMb: number | undefined;
  network: boolean;
  /**
   * Where the recipe may write host files for this image: beside the
   * results, one directory per image, removed again when left empty (a
   * temp directory would outlive a killed batch).
   */
  outputDir: string;
}

export function imageRunsOf(job: BatchJob): ImageRun[] {
  const outputs = `${job.results}.output`;
  return job.images.map((image) => ({
    image,
    recipe: job.recipe,
    mount: job.mount,
    timeoutMs: job.timeoutMs,
    memoryMb: job.memoryMb,
    network: job.network,
    outputDir: join(outputs, `${basename(image.path)}-${createHash('sha256').update(image.path).digest('hex').slice(0, 8)}`),
  }));
}

/** Removes an image's output directory, and the job's, if nothing was written there. */
async function tidyOutput(dir: string): Promise<void> {
  for (const d of [dir, dirname(dir)]) {
    if ((await readdir(d).catch(() => null))?.length !== 0) return;
    await rmdir(d).catch(() => undefined);
  }
}

/** A trace line that reports a call's result (`name = value`), not the call. */
const RESULT_LINE = /^\S+ = /;

/** Runs one image once; the session counts its calls for the observer. */
export async function runImageOnce(
  run: ImageRun,
  signal: AbortSignal | undefined,
  onCalls: (n: number) => void,
  log: (line: string) => void,
  beforeCommit?: () => Promise<void>,
): Promise<RunResult> {
  const s = new Session();
  // The trace is how a session reports each call; nothing prints it here.
  s.settings.trace = true;
  let calls = 0;
  s.on('trace', (line) => {
    if (!RESULT_LINE.test(line)) onCalls(++calls);
  });
  try {
    return await runRecipe({
      outputDir: run.outputDir,
      recipe: run.recipe,
      images: [{ path: run.image.path, format: run.image.format }],
      inspect: run.mount.inspect,
      mounts: run.mount.inspect ? undefined : run.mount.mounts,
      params: run.image.params,
      timeoutMs: run.timeoutMs,
      memoryMb: run.memoryMb,
      network: run.network,
      signal,
      log,
      session: s,
      beforeCommit,
    });
  } finally {
    await tidyOutput(run.outputDir);
  }
}

/**
 * Whether the commit a stopped batch had begun on `image` landed: an
 * interrupted merge is completed first (transaction recovery), then a moved
 * stamp means the image was written. Nothing else writes an image a batch
 * holds, so a moved stamp is that commit.
 */
export async function commitLanded(image: string, stampBefore: string, scope: 'host' | 'shared' = 'host'): Promise<boolean> {
  await recover(image);
  return (await stampOf(image, scope)) !== stampBefore;
}

/** A failed run's one-line reason. */
export function runError(r: RunResult): string {
  const f = r.failure;
  if (!f) return 'failed';
  const where = f.recipeLocation ?? f.location;
  return where && !f.message.startsWith(`${where.file}:`) ? `${f.name}: ${where.file}:${where.line}:${where.column}: ${f.message}` : `${f.name}: ${f.message}`;
}

/** The count of changes a recipe reported: the standard library's recipes return the list of what they changed. */
export function changesOf(value: unknown): number | null {
  if (Array.isArray(value)) return value.length;
  if (value && typeof value === 'object' && Array.isArray((value as { changes?: unknown }).changes)) return (value as { changes: unknown[] }).changes.length;
  return null;
}

export interface PoolOptions {
  concurrency: number;
  /** Digest of the recipe's code (recipeCodeDigest). */
  recipeDigest: string;
  signal?: AbortSignal | undefined;
  observer: BatchObserver;
}

/**
 * Where a batch's results go, in the local pool and the queue alike: each
 * image's line to the results file and the observer, the record of finished
 * images (with skip_unchanged), and the summary once the batch ends.
 */
export async function openReport(
  job: BatchJob,
  observer: BatchObserver,
): Promise<{ done: DoneFile | null; report: (r: ImageResult) => void; close: () => void; summary: () => BatchSummary }> {
  const t0 = performance.now();
  const done = job.skipUnchanged ? await DoneFile.open(doneFileOf(job.results)) : null;
  const results = await ResultsFile.create(job.results);
  const all: ImageResult[] = [];
  return {
    done,
    report: (r) => {
      results.write(r);
      all.push(r);
      observer.finished(r);
    },
    close: () => results.close(),
    summary: () => summarize(all, (performance.now() - t0) / 1000),
  };
}

/** Runs the job's images in the local pool; every image gets a result line, in the order they finish. */
export async function runPool(job: BatchJob, opts: PoolOptions): Promise<BatchSummary> {
  const { done, report, close, summary } = await openReport(job, opts.observer);
  const runs = imageRunsOf(job);
  let next = 0;
  /** Why images not yet started are not started at all. */
  let halted: string | null = null;
  const signal = opts.signal;
  const onStop = (): void => {
    halted ??= `not run: ${signal?.reason instanceof Error ? signal.reason.message : 'stopped'}`;
  };
  signal?.addEventListener('abort', onStop, { once: true });
  if (signal?.aborted) onStop();

  const one = async (run: ImageRun): Promise<void> => {
    const image = run.image.path;
    const t = performance.now();
    const seconds = (): number => Math.round((performance.now() - t) / 100) / 10;
    const digest = runDigest(opts.recipeDigest, run.image, run.mount);
    const rec = done?.get(image);
    if (rec?.kind === 'committing' && rec.run === digest) {
      let landed: boolean;
      try {
        landed = await commitLanded(image, rec.stamp);
      } catch (e) {
        report({ image, ok: false, committed: false, skipped: false, changes: null, seconds: seconds(), error: (e as Error).message, attempts: 0 });
        return;
      }
      if (landed) {
        const content = await contentHash(image, signal);
        const fp = fingerprint(digest, content);
        done!.add({ kind: 'done', image, fingerprint: fp, content, stamp: await stampOf(image) });
        opts.observer.log(image, 'its commit had landed when the last batch stopped: done then');
        report({ image, ok: true, committed: false, skipped: true, changes: null, seconds: seconds(), error: null, attempts: 0, fingerprint: fp });
        return;
      }
    } else if (rec?.kind === 'done') {
      const now = await currentFingerprint(image, digest, done, signal).catch(() => null);
      if (now?.matches) {
        report({ image, ok: true, committed: false, skipped: true, changes: 0, seconds: seconds(), error: null, attempts: 0, fingerprint: now.fingerprint });
        return;
      }
    }
    const beforeCommit = done ? async (): Promise<void> => done.add({ kind: 'committing', image, run: digest, stamp: await stampOf(image) }) : undefined;
    let last: ImageResult | null = null;
    for (let attempt = 1; attempt <= job.retries + 1 && !halted; attempt++) {
      opts.observer.started(image, attempt);
      let r: RunResult | null = null;
      let error: string | null = null;
      try {
        r = await runImageOnce(run, signal, (n) => opts.observer.calls(image, n), (line) => opts.observer.log(image, line), beforeCommit);
        if (!r.ok) error = runError(r);
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      last = { image, ok: r?.ok === true, committed: r?.committed === true, skipped: false, changes: r?.ok ? changesOf(r.value) : null, seconds: seconds(), error, attempts: attempt };
      if (last.ok) break;
    }
    if (!last) {
      report({ image, ok: false, committed: false, skipped: false, changes: null, seconds: 0, error: halted, attempts: 0 });
      return;
    }
    if (last.committed && done) {
      // Recorded before it is reported: a crash between the two redoes nothing.
      const stamp = await stampOf(image);
      const content = await contentHash(image);
      last.fingerprint = fingerprint(digest, content);
      done.add({ kind: 'done', image, fingerprint: last.fingerprint, content, stamp });
    }
    if (!last.ok && job.onFailure === 'stop') halted ??= `not run: on_failure is stop and '${image}' failed`;
    report(last);
  };

  const slot = async (): Promise<void> => {
    while (next < runs.length) {
      const run = runs[next++]!;
      if (halted) report({ image: run.image.path, ok: false, committed: false, skipped: false, changes: null, seconds: 0, error: halted, attempts: 0 });
      else await one(run);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, runs.length) }, slot));
  } finally {
    signal?.removeEventListener('abort', onStop);
    close();
    // Also the empty directories a killed batch left for images this run did not need to run.
    for (const run of runs) await tidyOutput(run.outputDir);
  }
  return summary();
}
