// Batch over several machines: the submitter (`guestsh batch JOB.yaml
// --queue redis://HOST:PORT`) puts one BullMQ job per image on a Redis
// queue and prints the results as workers (`guestsh worker --queue …`, on
// any number of hosts reaching the images by the same paths) send them back.
//
// A job's id is the fingerprint of its image as it is now (with the recipe's
// code, params, format and mounts), so submitting the same job again while it
// is queued or running adds nothing; a worker records the fingerprint of the
// image as its run left it, so a resubmission after the run (skip_unchanged)
// recognises the image as done and adds nothing either.
//
// A worker that dies mid-job stops renewing the job's lock; BullMQ's stalled
// check (every GUESTSH_QUEUE_STALL_MS, default 30 s) hands the job to another
// worker once, and that worker's open of the image removes the dead run's
// overlay (transaction recovery) and starts from the untouched image. The
// image's writer lock is a flock on the image itself, so two workers never
// write one image at once, whichever hosts they are on.

import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { type ConnectionOptions, type Job, Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { UsageError } from '../errors.js';
import { contentHash, currentFingerprint, fingerprint, runDigest, stampOf } from './fingerprint.js';
import type { BatchJob } from './job.js';
import { type BatchObserver, type BatchSummary, changesOf, commitLanded, type ImageResult, type ImageRun, imageRunsOf, openReport, recipeCodeDigest, runError, runImageOnce } from './pool.js';

const QUEUE = 'guestsh-batch';
/** Fingerprints of images as a finished run left them (hash: fingerprint → the job's id). */
const OUTPUTS = 'guestsh-batch:outputs';
/** Jobs whose commit has begun (hash: job id → the image's shared stamp before it), so a retry after a dead worker does not commit twice. */
const COMMITTING = 'guestsh-batch:committing';
const CONNECT_TIMEOUT_MS = 10_000;

/** What a queued job carries: the image's run, and what its fingerprint was made from. */
export interface QueueJobData {
  run: ImageRun;
  recipeDigest: string;
  retries: number;
  /** The submitter's host, for error messages. */
  from: string;
}

export interface QueueProgress {
  host: string;
  pid: number;
  attempt: number;
  calls: number;
}

function connection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--queue: '${url}' is not a redis://HOST:PORT address`);
  }
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // The worker's blocking reads must never give up; a lost connection is retried every second.
    maxRetriesPerRequest: null,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: () => 1000,
  };
}

/** Waits for Redis, bounded: a wrong address is an error that says so, not a hang. */
async function ready(what: { waitUntilReady(): Promise<unknown> }, url: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      what.waitUntilReady(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new UsageError(`cannot reach Redis at ${url} (no answer in ${CONNECT_TIMEOUT_MS / 1000} s); is redis-server running there?`)), CONNECT_TIMEOUT_MS))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface SubmitOptions {
  url: string;
  recipeDigest: string;
  signal?: AbortSignal | undefined;
  observer: BatchObserver;
}

/** Enqueues the job's images (those not done already) and reports each result as it comes back. */
export async function submitBatch(job: BatchJob, opts: SubmitOptions): Promise<BatchSummary> {
  const conn = connection(opts.url);
  const queue = new Queue<QueueJobData, ImageResult>(QUEUE, { connection: conn });
  const events = new QueueEvents(QUEUE, { connection: conn });
  queue.on('error', () => undefined);
  events.on('error', () => undefined);
  const { done, report, close, summary } = await openReport(job, opts.observer);
  try {
    await ready(queue, opts.url);
    await ready(events, opts.url);
    const client = await queue.getBackend().client;
    const imageOf = new Map<string, string>();
    events.on('active', ({ jobId }) => {
      const image = imageOf.get(jobId);
      if (image) opts.observer.started(image, 1);
    });
    events.on('progress', ({ jobId, data }) => {
      const image = imageOf.get(jobId);
      const p = data as Partial<QueueProgress>;
      if (image && typeof p.calls === 'number') opts.observer.calls(image, p.calls);
    });
    /** This submission's jobs not yet reported, by id. */
    const pending = new Map<string, { image: string; job: Job<QueueJobData, ImageResult> }>();
    let allQueued = false;
    let drained!: () => void;
    const allReported = new Promise<void>((resolve) => (drained = resolve));
    const settle = (id: string, r: ImageResult): void => {
      if (!pending.delete(id)) return;
      report(r);
      if (allQueued && pending.size === 0) drained();
    };
    const notRun = (image: string, why: string): ImageResult => ({ image, ok: false, committed: false, skipped: false, changes: null, seconds: 0, error: why, attempts: 0 });
    // on_failure: stop takes this submission's jobs no worker has started off the queue.
    const withdrawWaiting = async (failed: string): Promise<void> => {
      for (const [id, p] of pending) {
        const state = await p.job.getState();
        if (state !== 'waiting' && state !== 'prioritized' && state !== 'delayed') continue;
        await p.job.remove().catch(() => undefined);
        settle(id, notRun(p.image, `not run: on_failure is stop and '${failed}' failed`));
      }
    };
    for (const run of imageRunsOf(job)) {
      opts.signal?.throwIfAborted();
      const image = run.image.path;
      const digest = runDigest(opts.recipeDigest, run.image, run.mount);
      const now = await currentFingerprint(image, digest, done, opts.signal);
      if (job.skipUnchanged && (now.matches || (await client.hget(OUTPUTS, now.fingerprint)) !== null)) {
        report({ image, ok: true, committed: false, skipped: true, changes: 0, seconds: 0, error: null, attempts: 0, fingerprint: now.fingerprint });
        continue;
      }
      const id = now.fingerprint;
      imageOf.set(id, image);
      const data: QueueJobData = { run, recipeDigest: opts.recipeDigest, retries: job.retries, from: hostname() };
      // The same id while a job is queued, running or kept: BullMQ adds nothing.
      const queued = await queue.add('image', data, { jobId: id, removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 7 * 24 * 3600 } });
      // A failed job of the same image, recipe and params is tried again when the job is resubmitted.
      if ((await queued.getState()) === 'failed') await queued.retry();
      pending.set(id, { image, job: queued });
      queued.waitUntilFinished(events).then(
        async (r: ImageResult) => {
          if (r.committed && r.fingerprint && done) {
            const content = await contentHash(image);
            // The worker's hash is of the image it committed; this host records it with its own stamp.
            if (fingerprint(digest, content) === r.fingerprint) done.add({ kind: 'done', image, fingerprint: r.fingerprint, content, stamp: await stampOf(image) });
          }
          settle(id, r);
        },
        (e: Error) => {
          settle(id, { ...notRun(image, e.message), attempts: 1 });
          if (job.onFailure === 'stop') void withdrawWaiting(image);
        },
      );
    }
    allQueued = true;
    if (pending.size === 0) drained();
    const stopped = new Promise<void>((resolve) => {
      if (opts.signal?.aborted) resolve();
      opts.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    await Promise.race([allReported, stopped]);
    // Stopped: what is still queued stays queued for the workers; this submitter no longer waits for it.
    for (const [id, p] of pending) settle(id, notRun(p.image, 'not waited for: the submitter was stopped (the job stays on the queue)'));
  } finally {
    close();
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
  return summary();
}

export interface WorkerOptions {
  url: string;
  concurrency: number;
  signal: AbortSignal;
  log: (line: string) => void;
}

/** How long a job's lock lasts without renewal, and how often stalled jobs are looked for. */
function stallMs(): number {
  const v = Number(process.env.GUESTSH_QUEUE_STALL_MS);
  return Number.isFinite(v) && v > 0 ? v : 30_000;
}

/** Takes jobs until the signal: each image's run as in the local pool, its result sent back through the job. */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  const conn = connection(opts.url);
  const digests = new Map<string, Promise<string>>();
  const host = hostname();
  let worker: Worker<QueueJobData, ImageResult> | null = null;

  const processJob = async (job: Job<QueueJobData, ImageResult>): Promise<ImageResult> => {
    const { run, recipeDigest: wanted, retries } = job.data;
    const image = run.image.path;
    if (!existsSync(image)) throw new UnrecoverableError(`image '${image}' does not exist on ${host} (workers reach images by the submitter's paths: put them on shared storage)`);
    if (!run.recipe.startsWith('guestsh/') && !existsSync(run.recipe)) throw new UnrecoverableError(`recipe '${run.recipe}' does not exist on ${host}`);
    let digest = digests.get(run.recipe);
    if (!digest) digests.set(run.recipe, (digest = recipeCodeDigest(run.recipe)));
    if ((await digest.catch((e: Error) => `unloadable: ${e.message}`)) !== wanted) {
      digests.delete(run.recipe);
      throw new UnrecoverableError(`the recipe '${run.recipe}' on ${host} is not the one submitted from ${job.data.from} (its code differs); give every worker the same recipe`);
    }
    const t = performance.now();
    const client = await worker!.getBackend().client;
    const jobId = String(job.id);
    const seconds = (): number => Math.round((performance.now() - t) / 100) / 10;
    const finish = async (result: ImageResult): Promise<ImageResult> => {
      if (result.committed) {
        result.fingerprint = fingerprint(runDigest(wanted, run.image, run.mount), await contentHash(image));
        await client.hset(OUTPUTS, { [result.fingerprint]: jobId });
      }
      opts.log(`${image}: ok (${result.seconds} s)`);
      return result;
    };
    // An earlier attempt that died after its commit had begun: it landed if the image was written since.
    const before = await client.hget(COMMITTING, jobId);
    if (before !== null && (await commitLanded(image, before, 'shared'))) {
      opts.log(`${image}: the attempt that died had committed; not run again`);
      return finish({ image, ok: true, committed: true, skipped: false, changes: null, seconds: seconds(), error: null, attempts: 0 });
    }
    opts.log(`${image}: started (job ${jobId})`);
    let lastError = 'failed';
    for (let attempt = 1; attempt <= retries + 1; attempt++) {
      let sent = 0;
      const progress = (calls: number): void => {
        // At most a few updates a second go to Redis.
        if (Date.now() - sent < 250) return;
        sent = Date.now();
        void job.updateProgress({ host, pid: process.pid, attempt, calls } satisfies QueueProgress).catch(() => undefined);
      };
      const beforeCommit = async (): Promise<void> => void (await client.hset(COMMITTING, { [jobId]: await stampOf(image, 'shared') }));
      const r = await runImageOnce(run, opts.signal, progress, (line) => opts.log(`${image}: ${line}`), beforeCommit);
      // Stopped: the run committed nothing, and the job is neither failed nor
      // done; its lock lapses and the stalled check gives it to another worker.
      if (opts.signal.aborted) return new Promise<never>(() => undefined);
      if (r.ok) return finish({ image, ok: true, committed: r.committed, skipped: false, changes: changesOf(r.value), seconds: seconds(), error: null, attempts: attempt });
      lastError = runError(r);
      opts.log(`${image}: attempt ${attempt} failed: ${lastError}`);
    }
    // The run's own retries are spent: BullMQ is not to try again.
    throw new UnrecoverableError(lastError);
  };

  const stall = stallMs();
  worker = new Worker<QueueJobData, ImageResult>(QUEUE, processJob, {
    connection: conn,
    concurrency: opts.concurrency,
    lockDuration: stall,
    stalledInterval: stall,
    maxStalledCount: 1,
    autorun: false,
  });
  worker.on('error', (e) => opts.log(`redis: ${e.message}`));
  await ready(worker, opts.url);
  const stopped = new Promise<void>((resolve) => {
    if (opts.signal.aborted) resolve();
    opts.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  const running = worker.run();
  await stopped;
  // Not waiting for the jobs under way: their runs are stopped before any
  // commit, and their locks lapse, so BullMQ gives them to another worker.
  await worker.close(true).catch(() => undefined);
  await running.catch(() => undefined);
}
