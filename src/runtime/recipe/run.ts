// `guestsh run`: compile and link the recipe (a syntax or import error is
// thrown before any appliance starts), add the images, launch, mount (-i /
// -m), run the recipe in its sandbox, then commit (shutdown) on success or
// discard (close) on any failure, so an image is changed completely or not
// at all. A stop (the caller's signal) is a failure until the commit begins,
// and is too late after: the commit completes.

import { mkdir, mkdtemp, readdir, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { Session } from '../session/session.js';
import type { FileChange } from '../session/changes.js';
import { type MountArg, openImages, type OpenOptions } from '../open/open.js';
import { PathPolicy } from './policy.js';
import { RECIPE_LIMITS } from './limits.js';
import { typecheckRecipe } from './typecheck.js';
import { checkParams, declarations } from './declarations.js';
import { type PreparedRecipe, prepareRecipe, type RecipeFailure, type SandboxOptions, type SandboxTimings, STDLIB_RECIPES } from './sandbox.js';

export interface RunImage {
  path: string;
  format?: string | undefined;
  /** --ro: the image is opened read-only (nothing is committed either way). */
  readonly?: boolean | undefined;
}

/** -m dev[:mnt[:opts[:fstype]]] */
export type RunMount = MountArg;

export interface RunOptions {
  /** The recipe: a .gfs.ts path, or a standard-library recipe `guestsh/sysprep` (also `std:sysprep`). */
  recipe: string;
  /** -a / --image, in order. */
  images: RunImage[];
  /** -i: inspect and mount the guest's filesystems. */
  inspect?: boolean | undefined;
  /** -m dev:mnt[:opts[:fstype]], in order. */
  mounts?: RunMount[] | undefined;
  /** The keys to try for each encrypted device -i opens (--key, --keys-from-stdin), in order; without them an encrypted guest cannot be inspected. */
  keys?: ((device: string, uuid: string | null) => Promise<readonly string[]>) | undefined;
  /** --param key=value. */
  params?: Record<string, string> | undefined;
  /** --timeout SECONDS as milliseconds (default 10 minutes). */
  timeoutMs?: number | undefined;
  /** --memory MB (default 128). */
  memoryMb?: number | undefined;
  /** Type-check the recipe before anything launches (default true; a standard-library recipe is never checked again). */
  typecheck?: boolean | undefined;
  /** --dry-run: run, report what changed, discard. */
  dryRun?: boolean | undefined;
  /** Where host-side writes (download, copy_out, …) may go; default a new temp directory. */
  outputDir?: string | undefined;
  /** --network: the appliance gets qemu user networking (for install/update of packages). */
  network?: boolean | undefined;
  /** -v: appliance console and call trace lines go to `log`. */
  verbose?: boolean | undefined;
  /** --allow-backing: the images may have backing files and external data files anywhere; without it, none. */
  allowBacking?: boolean | undefined;
  /**
   * Stops the run (the CLI's SIGINT, SIGTERM, SIGHUP): before the commit
   * begins, the run fails and nothing is written; once it has begun, it completes.
   */
  signal?: AbortSignal | undefined;
  /** Asked just before the commit's merge begins, to hear a stop not yet heard (the CLI's Stop.confirm). */
  confirmStop?: (() => void) | undefined;
  /** Receives the recipe's log lines (and progress notes). Default: stderr. */
  log?: ((line: string) => void) | undefined;
  /** Receives the session's notices (the TCG fallback, a recovered commit, …). Default: `log`. */
  notice?: ((line: string) => void) | undefined;
  /** Told as the run enters each stage, for a pipeline's progress events. */
  onStage?: ((stage: RunStage) => void) | undefined;
  /** Use this session (config state, nothing added) instead of a new one; for tests and watch mode. */
  session?: Session | undefined;
  /**
   * Called once the recipe has succeeded, before the commit begins: a batch
   * notes there that the image may be written from now on, so that a crash
   * during or after the merge is told apart from one before it.
   */
  beforeCommit?: (() => Promise<void>) | undefined;
}

/** The stages of a run, in order: compile and link the recipe, open the images, run it, commit. */
export type RunStage = 'compile' | 'open' | 'recipe' | 'commit';

export interface RunTimings extends SandboxTimings {
  /** 0 when the recipe's files passed before (or the check was skipped). */
  typecheckMs: number;
  launchMs: number;
  commitMs: number;
  totalMs: number;
}

export interface RunResult {
  ok: boolean;
  /** The images were changed (success, not --dry-run, and the recipe made a call that writes). */
  committed: boolean;
  /** What the recipe returned, if it is JSON-serialisable. */
  value?: unknown;
  failure?: RecipeFailure | undefined;
  /** --dry-run: the files the recipe added, removed or modified (then discarded). */
  changes?: FileChange[] | undefined;
  outputDir: string;
  /** libguestfs calls the recipe made. */
  calls: number;
  timings: RunTimings;
  /** Exit status for the CLI: 0 ok, 1 recipe failed (or stopped), 2 policy, 3 time or memory limit, 4 setup (launch/mount) failed (compile errors are thrown: RecipeCompileFailed). */
  exitCode: number;
}

export const DEFAULT_TIMEOUT_MS = RECIPE_LIMITS.timeoutMs;
export const DEFAULT_MEMORY_MB = RECIPE_LIMITS.memoryMb;

/** The recipe cannot be loaded (a syntax error, an import that fails): found before the appliance starts. */
export class RecipeCompileFailed extends UsageError {
  override name = 'RecipeCompileFailed';
  constructor(readonly failure: RecipeFailure) {
    const where = failure.recipeLocation ?? failure.location;
    const located = where && !failure.message.startsWith(`${where.file}:`) ? `${where.file}:${where.line}:${where.column}: ${failure.message}` : failure.message;
    super(`${failure.name}: ${located}`);
  }
}

/** Standard-library recipe names accepted as RECIPE. */
export function stdRecipeName(recipe: string): string | null {
  const m = /^(?:guestsh\/|std:)([a-z-]+)$/.exec(recipe);
  if (!m) return null;
  if (!(STDLIB_RECIPES as readonly string[]).includes(m[1]!)) {
    throw new Error(`unknown standard-library recipe '${recipe}' (there are: ${STDLIB_RECIPES.map((x) => `guestsh/${x}`).join(', ')})`);
  }
  return m[1]!;
}

/** A resolved recipe: what to compile, and what it may touch on the host. */
export interface RecipeSource {
  entry: string;
  /** The synthetic entry of a standard-library recipe. */
  entrySource?: string | undefined;
  /** A standard-library recipe's name, else null. */
  std: string | null;
  policy: PathPolicy;
  outputDir: string;
  /** The output directory is a temp dir made for this run (removed at the end if the recipe left it empty). */
  outputIsTemp: boolean;
}

/** Removes a run's temp output directory if the recipe wrote nothing there. */
export async function releaseOutputDir(src: RecipeSource): Promise<void> {
  if (src.outputIsTemp && (await readdir(src.outputDir)).length === 0) await rm(src.outputDir, { recursive: true, force: true });
}

export async function resolveRecipe(opts: Pick<RunOptions, 'recipe' | 'outputDir'>): Promise<RecipeSource> {
  const std = stdRecipeName(opts.recipe);
  const entry = std ? resolve(`guestsh-std-${std}.gfs.ts`) : resolve(opts.recipe);
  if (!std) {
    const st = await stat(entry).catch(() => null);
    if (!st?.isFile()) throw new Error(`recipe '${opts.recipe}' does not exist`);
  }
  const outputDir = opts.outputDir ? resolve(opts.outputDir) : await mkdtemp(join(tmpdir(), 'guestsh-run-'));
  await mkdir(outputDir, { recursive: true });
  const policy = await PathPolicy.create(std ? process.cwd() : dirname(await realpath(entry)), outputDir);
  return { entry, entrySource: std ? `export { default } from 'guestsh/${std}';\n` : undefined, std, policy, outputDir, outputIsTemp: !opts.outputDir };
}

/** How a run's sandbox is set up from the resolved recipe and the run's options (run and watch alike). */
export function sandboxOptions(src: RecipeSource, opts: Pick<RunOptions, 'params' | 'memoryMb' | 'timeoutMs'>, target: Session, log: (line: string) => void): SandboxOptions {
  return {
    entry: src.entry,
    entrySource: src.entrySource,
    policy: src.policy,
    params: opts.params ?? {},
    target,
    memoryMb: opts.memoryMb ?? DEFAULT_MEMORY_MB,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    log,
  };
}

/** What a run's options set on its session: the network, and the backing files its images may have. */
export function applyRunSettings(s: Session, opts: Pick<RunOptions, 'network' | 'allowBacking'>): void {
  if (opts.network) s.settings.network = true;
  // A recipe runs unattended on images it was handed: it follows no file the image names unless told to.
  s.settings.backing = opts.allowBacking ? 'any' : 'none';
}

/** A run given up because `signal` stopped it before its commit began. */
export function stoppedFailure(signal: AbortSignal): RecipeFailure {
  const why = signal.reason instanceof Error ? signal.reason.message : 'stopped';
  return { kind: 'error', name: 'RunStopped', message: `${why} before the commit began`, location: null, recipeLocation: null, stack: '' };
}

/** Wires -v to `log` and notices to `notice`. */
export function attachLog(s: Session, log: (line: string) => void, verbose: boolean | undefined, notice: (line: string) => void = log): void {
  if (verbose) {
    s.settings.verbose = true;
    s.settings.trace = true;
    s.on('trace', (l) => log(`trace: ${l}`));
    s.on('console', (l) => log(`console: ${l}`));
  }
  s.on('notice', (l) => notice(l));
}

/** What the run opens: its images, -i (with the keys for encrypted devices) and -m; the appliance always starts. */
export function openOptionsOf(opts: Pick<RunOptions, 'images' | 'inspect' | 'mounts' | 'keys'>): OpenOptions {
  return {
    drives: opts.images.map((img) => ({ path: img.path, format: img.format, readonly: img.readonly ?? false })),
    inspect: opts.inspect,
    mounts: opts.mounts,
    keys: opts.keys,
    launch: true,
  };
}

/** Exit status for a failed recipe: 3 time or memory limit, 2 compile or policy, else 1. */
export function failureExitCode(f: RecipeFailure): number {
  return f.kind === 'timeout' || f.kind === 'memory' ? 3 : f.kind === 'compile' || f.kind === 'policy' ? 2 : 1;
}

/** A setup error (launch, mount) reported as a failure of kind 'error'. */
export function setupFailure(e: unknown): RecipeFailure {
  return { kind: 'error', name: (e as Error)?.name ?? 'Error', message: e instanceof Error ? e.message : String(e), location: null, recipeLocation: null, stack: '' };
}

export async function runRecipe(opts: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const src = await resolveRecipe(opts);
  const { outputDir } = src;

  const timings: RunTimings = { compileMs: 0, isolateMs: 0, instantiateMs: 0, runMs: 0, typecheckMs: 0, launchMs: 0, commitMs: 0, totalMs: 0 };
  const s = opts.session ?? new Session();
  attachLog(s, log, opts.verbose, opts.notice);
  const stage = opts.onStage ?? (() => {});
  const signal = opts.signal;
  // Until the commit begins, a stop closes the session at once, so a launch
  // or a call under way ends with it; from then on shutdown() decides.
  let committing = false;
  let closing: Promise<void> | null = null;
  const onStop = (): void => {
    // Handled here as well as awaited at the end: a close that fails before then must not end the process as an unhandled rejection.
    if (!committing) closing ??= s.close().catch(() => undefined);
  };
  signal?.addEventListener('abort', onStop, { once: true });
  if (signal?.aborted) onStop();
  let calls = 0;
  const end = (r: Omit<RunResult, 'outputDir' | 'calls' | 'timings'>): RunResult => {
    const ended = { ...r, outputDir, calls, timings: { ...timings, totalMs: performance.now() - t0 } };
    // Whatever failed under a stop (a closed session, a disposed sandbox), the stop is the news.
    return signal?.aborted && !r.committed ? { ...ended, ok: false, failure: stoppedFailure(signal), exitCode: 1 } : ended;
  };
  let prepared: PreparedRecipe | null = null;
  try {
    // Declarations first: a mistyped param is refused before anything is compiled or launched.
    const declared = await declarations(src);
    const params = declared.params ? checkParams(declared.params, opts.params ?? {}, opts.recipe) : (opts.params ?? {});
    // A recipe that only reads gets its images read-only: it cannot write, and nothing is committed.
    if (declared.readOnly) opts = { ...opts, images: opts.images.map((i) => ({ ...i, readonly: true })) };
    if (!declared.params && Object.keys(params).length > 0) {
      log(`guestsh: ${opts.recipe} declares no params, so ${Object.keys(params).map((p) => `--param ${p}`).join(', ')} cannot be checked (declare them: export const params = { … })`);
    }
    stage('compile');
    prepared = await prepareRecipe({ ...sandboxOptions(src, { ...opts, params }, s, log), signal });
    if (!prepared.ok) throw new RecipeCompileFailed(prepared.result.failure!);
    if (opts.typecheck !== false && src.std === null) {
      const tt = performance.now();
      try {
        await typecheckRecipe(prepared.modules);
      } catch (e) {
        prepared.dispose();
        throw e;
      }
      timings.typecheckMs = performance.now() - tt;
    }
    // A stop that came while the type check held the thread is seen only now:
    // launching after it would race the close it began and leave a qemu behind.
    if (signal?.aborted) {
      prepared.dispose();
      return end({ ok: false, committed: false, exitCode: 1 });
    }
    try {
      stage('open');
      const tl = performance.now();
      applyRunSettings(s, opts);
      await openImages(s, { ...openOptionsOf(opts), warn: log });
      timings.launchMs = performance.now() - tl;
    } catch (e) {
      prepared.dispose();
      return end({ ok: false, committed: false, failure: setupFailure(e), exitCode: 4 });
    }

    stage('recipe');
    const r = await prepared.run();
    Object.assign(timings, r.timings);
    calls = r.calls;
    if (!r.ok) return end({ ok: false, committed: false, failure: r.failure, exitCode: failureExitCode(r.failure!) });
    if (signal?.aborted) return end({ ok: false, committed: false, exitCode: 1 });
    let changes: FileChange[] | undefined;
    let committed = false;
    try {
      if (opts.dryRun) {
        changes = await s.changes();
      } else if (s.writeCalls === 0) {
        // The recipe only read (mounting read-write touched a superblock,
        // nothing of the recipe's): nothing to commit, the images stay byte-identical.
      } else {
        await opts.beforeCommit?.();
        stage('commit');
        const tc = performance.now();
        committing = true;
        await s.shutdown({ signal, confirmStop: opts.confirmStop });
        // Only transactional (read-write) drives have anything to commit.
        committed = s.drives.some((d) => d.tx !== null);
        timings.commitMs = performance.now() - tc;
      }
    } catch (e) {
      if (signal?.aborted) return end({ ok: false, committed: false, exitCode: 1 });
      throw e;
    }
    return end({ ok: true, committed, value: r.value, changes, exitCode: 0 });
  } finally {
    signal?.removeEventListener('abort', onStop);
    // Anything not committed by shutdown() is discarded here; after a commit
    // close() only removes the run directory. A close a stop began is let
    // finish first: a drive added while it ran is closed by the second.
    await (closing as Promise<void> | null);
    await s.close();
    // A run stopped at a limit returns before its calls have: the closed session has ended them, and they finish tidying first.
    if (prepared?.ok) await prepared.settled();
    await releaseOutputDir(src);
  }
}
