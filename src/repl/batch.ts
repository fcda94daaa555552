// `guestsh batch JOB.yaml [--queue redis://HOST:PORT]` and `guestsh worker
// --queue redis://HOST:PORT [--concurrency N]`: the verbs over
// src/runtime/batch/. The job is checked whole (and its recipe compiled)
// before any image is touched; a bad one is exit status 2. Then 0: every
// image done (or skipped), 1: some image failed or was not run. A stop
// (Ctrl-C) starts no more images, stops the running ones before their
// commit, and exits 128 + N.

import { freemem } from 'node:os';
import { relative } from 'node:path';
import { UsageError } from '../runtime/errors.js';
import type { BatchObserver, BatchSummary, ImageResult } from '../runtime/batch/pool.js';
import type { Options } from './options.js';
import type { Stop } from './stop.js';

/** Memory an appliance is given (the session's memsize), which the default concurrency divides free memory by. */
async function applianceMemsize(): Promise<number> {
  const { defaultSettings } = await import('../runtime/session/settings.js');
  return defaultSettings().memsize;
}

export async function batchVerb(o: Options, stop: Stop): Promise<number> {
  const [file, ...more] = o.operands;
  if (!file) throw new UsageError('batch: name a job file (JOB.yaml); see guestsh batch --help');
  if (more.length) throw new UsageError(`batch: one job file at a time (got '${file}' and '${more[0]}')`);
  const { loadJob, defaultConcurrency } = await import('../runtime/batch/job.js');
  const { recipeCodeDigest, runPool } = await import('../runtime/batch/pool.js');
  const job = loadJob(file);
  const digest = await recipeCodeDigest(job.recipe);
  const display = new BatchDisplay(job.images.length, process.stderr);
  let summary: BatchSummary;
  if (o.queue) {
    const { submitBatch } = await import('../runtime/batch/queue.js');
    process.stderr.write(`guestsh: batch: ${job.images.length} images to the queue at ${o.queue}; results come back as workers finish them\n`);
    summary = await submitBatch(job, { url: o.queue, recipeDigest: digest, signal: stop.signal, observer: display });
  } else {
    let concurrency = o.concurrency ?? job.concurrency;
    if (concurrency === null) {
      const chosen = defaultConcurrency(await applianceMemsize(), freemem());
      concurrency = chosen.n;
      process.stderr.write(`guestsh: batch: concurrency ${chosen.why}\n`);
    }
    summary = await runPool(job, { concurrency, recipeDigest: digest, signal: stop.signal, observer: display });
  }
  display.end();
  const parts = [`${summary.ok} ok (${summary.committed} committed, ${summary.skipped} skipped as unchanged)`, `${summary.failed} failed`];
  if (summary.notRun) parts.push(`${summary.notRun} not run`);
  process.stdout.write(`batch: ${summary.results.length} images: ${parts.join(', ')}; ${summary.seconds.toFixed(1)} s; results in ${shown(job.results)}\n`);
  return stop.exitCode(summary.failed + summary.notRun > 0 ? 1 : 0);
}

export async function workerVerb(o: Options, stop: Stop): Promise<number> {
  if (!o.queue) throw new UsageError('worker: name the queue with --queue redis://HOST:PORT');
  if (o.operands.length) throw new UsageError(`worker: unexpected '${o.operands[0]}'; see guestsh worker --help`);
  const { runWorker } = await import('../runtime/batch/queue.js');
  const concurrency = o.concurrency ?? 1;
  process.stderr.write(`guestsh: worker: taking jobs from ${o.queue}, ${concurrency} at once (Ctrl-C to stop)\n`);
  await runWorker({ url: o.queue, concurrency, signal: stop.signal, log: (l) => process.stderr.write(`guestsh: worker: ${l}\n`) });
  return stop.exitCode(0);
}

/**
 * The batch's progress on stderr: on a terminal a block redrawn in place
 * (done / failed / running, and each running image's calls), otherwise one
 * plain line per image as it starts and ends.
 */
class BatchDisplay implements BatchObserver {
  private readonly tty: boolean;
  private readonly running = new Map<string, { calls: number; attempt: number }>();
  private done = 0;
  private failed = 0;
  private skipped = 0;
  private drawn = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream,
  ) {
    this.tty = Boolean(out.isTTY);
    if (this.tty) this.timer = setInterval(() => this.draw(), 250).unref();
  }

  started(image: string, attempt: number): void {
    this.running.set(image, { calls: 0, attempt });
    if (!this.tty) this.out.write(`guestsh: batch: ${attempt > 1 ? `retrying (attempt ${attempt})` : 'started'} ${image}\n`);
  }

  calls(image: string, calls: number): void {
    const r = this.running.get(image);
    if (r) r.calls = calls;
  }

  log(image: string, line: string): void {
    this.above(`guestsh: ${image}: ${line}`);
  }

  finished(r: ImageResult): void {
    this.running.delete(r.image);
    if (r.ok) this.done++;
    else this.failed++;
    if (r.skipped) this.skipped++;
    const what = r.skipped
      ? 'skipped: unchanged since its last run (fingerprint matches)'
      : r.ok
        ? `ok, ${r.committed ? 'committed' : 'nothing to commit'}${r.changes !== null ? `, ${r.changes} changes` : ''} (${r.seconds} s)`
        : r.attempts === 0
          ? `${r.error}`
          : `FAILED: ${r.error}`;
    this.above(`guestsh: batch: ${r.image}: ${what}`);
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.erase();
  }

  /** A line that stays, printed above the live block. */
  private above(line: string): void {
    this.erase();
    this.out.write(`${line}\n`);
    this.draw();
  }

  private erase(): void {
    if (!this.tty || this.drawn === 0) return;
    this.out.write(`\x1b[${this.drawn}F\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.tty) return;
    this.erase();
    const width = Math.max(40, (this.out.columns ?? 80) - 1);
    const lines = [`batch: ${this.done + this.failed}/${this.total} done, ${this.failed} failed, ${this.skipped} skipped, ${this.running.size} running`];
    for (const [image, r] of this.running) lines.push(`  ${image}: ${r.calls} calls${r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}`.slice(0, width));
    this.out.write(`${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }
}

/** A path as short as it reads well: relative below the current directory, else absolute. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}
