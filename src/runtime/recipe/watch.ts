// `guestsh run --watch`: one session, launched once; the recipe re-runs on
// every save in its directory. Each run starts from the same state (a
// savepoint taken after mounting) and ends with a list of what it changed,
// then a rollback: nothing is ever committed, the image stays byte-identical.

import { watch as watchFiles, type FSWatcher } from 'chokidar';
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';
import { Session } from '../session/session.js';
import type { FileChange } from '../session/changes.js';
import { UsageError } from '../errors.js';
import { openImages } from '../open/open.js';
import { currentMounts, type Mount, remount } from '../session/mounts.js';
import {
  applyRunSettings,
  attachLog,
  failureExitCode,
  openOptionsOf,
  releaseOutputDir,
  resolveRecipe,
  sandboxOptions,
  type RunOptions,
  setupFailure,
  stdRecipeName,
} from './run.js';
import { prepareRecipe, type RecipeFailure, type SandboxResult } from './sandbox.js';
import { RecipeTypeErrors, typecheckRecipe } from './typecheck.js';

export interface WatchOptions extends Omit<RunOptions, 'dryRun' | 'session' | 'signal'> {
  /** Ends the loop; the session is then discarded. */
  signal: AbortSignal;
  /** Called after every run (and once if the setup fails). */
  onRun: (run: WatchRun) => void;
  /** Called as each run starts, before its log lines. */
  onStart?: ((run: number, trigger: string | null) => void) | undefined;
  /** Called once the first run is done and the watcher is listening. */
  onWatching?: ((dir: string) => void) | undefined;
  /** Quiet time after the last file event before a run starts (default 150 ms). */
  debounceMs?: number | undefined;
}

export interface WatchRun {
  /** 1, 2, …; 0 for a failed setup (launch or mount). */
  run: number;
  /** The file whose change started this run (relative to the recipe's directory); null for the first. */
  trigger: string | null;
  ok: boolean;
  failure?: RecipeFailure | undefined;
  /** Files the run added, removed or modified (each run starts from the same state). */
  changes: FileChange[];
  /** False when the save did not compile or type-check: the session was not touched. */
  ran: boolean;
  /** How `changes` differ from the last run that reached the session; null for the first, or when this one did not reach it. */
  sincePrevious: { added: FileChange[]; dropped: FileChange[] } | null;
  /** Read-only images: there is nothing to compare or roll back. */
  readOnly: boolean;
  calls: number;
  /** Recipe start to rollback done. */
  ms: number;
  /** What the CLI exits with if this is the last run. */
  exitCode: number;
}

const BASE = 'guestsh-watch-base';

/** Runs until `signal` aborts; resolves with the exit status (0, or 4 if the setup failed). */
export async function watchRecipe(opts: WatchOptions): Promise<number> {
  if (stdRecipeName(opts.recipe)) {
    throw new UsageError(`--watch re-runs a recipe file when it is saved; '${opts.recipe}' is part of guestsh (wrap it: export { default } from '${opts.recipe}')`);
  }
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const src = await resolveRecipe(opts);
  const dir = src.policy.roots.readDir;
  const s = new Session();
  attachLog(s, log, opts.verbose);
  let watcher: FSWatcher | null = null;
  // Ctrl-C ends a run in flight at once: closing the session fails its calls.
  let closing: Promise<void> | null = null;
  const closeNow = (): Promise<void> => (closing ??= s.close());
  opts.signal.addEventListener('abort', () => void closeNow().catch(() => {}), { once: true });
  try {
    let baseMounts: Mount[];
    let writable: boolean;
    try {
      applyRunSettings(s, opts);
      await openImages(s, { ...openOptionsOf(opts), warn: log });
      writable = s.drives.some((d) => d.tx !== null);
      if (writable) await s.g.savepoint(BASE);
      baseMounts = await currentMounts(s.g);
    } catch (e) {
      if (opts.signal.aborted) return 0;
      opts.onRun({ run: 0, trigger: null, ok: false, failure: setupFailure(e), changes: [], ran: false, sincePrevious: null, readOnly: false, calls: 0, ms: 0, exitCode: 4 });
      return 4;
    }

    // What a run depends on: its entry, the modules it imported and the host
    // files it read (uploads). A set that only grows: a module a broken run
    // did not reach still matters for the next one.
    // Runs start only once the watcher exists (see below).
    const inputs = new Set<string>([src.entry]);
    const dirsWatched = new Set<string>([dirname(src.entry)]);
    const track = (files: Iterable<string>): void => {
      for (const f of files) {
        inputs.add(f);
        if (dirsWatched.has(dirname(f))) continue;
        dirsWatched.add(dirname(f));
        watcher!.add(dirname(f));
      }
    };
    let n = 0;
    const runOnce = async (trigger: string | null): Promise<void> => {
      try {
        await runAndReset(trigger);
      } catch (e) {
        if (!opts.signal.aborted) throw e;
      }
    };
    let previous: FileChange[] | null = null;
    const runAndReset = async (trigger: string | null): Promise<void> => {
      const t0 = performance.now();
      const run = ++n;
      opts.onStart?.(run, trigger);
      const r = await compileThenRun();
      if (opts.signal.aborted) return;
      track([...r.modules, ...src.policy.filesRead]);
      if (r.failure?.location && isAbsolute(r.failure.location.file)) track([r.failure.location.file]);
      let changes: FileChange[] = [];
      // A save that does not compile or type-check never reached the session: nothing to list or roll back.
      if (writable && r.ran) {
        // A failed run's partial changes are listed too: they are what it did before failing.
        changes = await s.changes();
        // Back to the savepoint, mounted as after setup, whatever the recipe mounted or unmounted.
        await s.g.umountAll();
        await s.g.rollbackTo(BASE);
        await remount(s.g, baseMounts);
      }
      opts.onRun({
        run,
        trigger,
        ok: r.ok,
        failure: r.failure,
        changes,
        ran: r.ran,
        sincePrevious: r.ran && previous !== null ? difference(previous, changes) : null,
        readOnly: !writable,
        calls: r.calls,
        ms: performance.now() - t0,
        exitCode: r.ok ? 0 : failureExitCode(r.failure!),
      });
      if (r.ran) previous = changes;
    };
    // Compile, link and type-check first (milliseconds), then run against the session.
    const compileThenRun = async (): Promise<SandboxResult & { ran: boolean }> => {
      const prepared = await prepareRecipe({ ...sandboxOptions(src, opts, s, log), signal: opts.signal });
      if (!prepared.ok) return { ...prepared.result, ran: false };
      if (opts.typecheck !== false) {
        try {
          await typecheckRecipe(prepared.modules);
        } catch (e) {
          prepared.dispose();
          if (!(e instanceof RecipeTypeErrors)) throw e;
          const [p] = e.problems;
          const location = { file: resolve(p!.file), line: p!.line, column: p!.column };
          const more = e.problems.length > 1 ? ` (and ${e.problems.length - 1} more)` : '';
          return {
            ok: false,
            ran: false,
            calls: 0,
            modules: prepared.modules,
            timings: { compileMs: 0, isolateMs: 0, instantiateMs: 0, runMs: 0 },
            failure: { kind: 'compile', name: 'RecipeTypeErrors', message: `${p!.message}${more}`, location, recipeLocation: location, stack: '' },
          };
        }
      }
      return { ...(await prepared.run()), ran: true };
    };

    // Saves arrive as bursts of events (editors write, rename, chmod): one run
    // per burst, and a save during a run queues exactly one more run. The
    // watcher starts before the first run, so a save during it counts too.
    let pending: { trigger: string | null } | null = { trigger: null };
    let timer: NodeJS.Timeout | null = null;
    let running: Promise<void> = Promise.resolve();
    let busy = false;
    let failed: unknown = null;
    let stop: () => void = () => {};
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
      opts.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    const kick = (): void => {
      if (busy || pending === null || opts.signal.aborted) return;
      const { trigger } = pending;
      pending = null;
      busy = true;
      running = runOnce(trigger)
        .catch((e: unknown) => {
          failed = e;
          stop();
        })
        .finally(() => {
          busy = false;
          kick();
        });
    };

    // The directories of those files, not the files: editors save by
    // renaming a new file over the old one, which a watch on the file misses.
    watcher = watchFiles([...dirsWatched], { ignoreInitial: true, depth: 0 });
    watcher.on('all', (_event, path) => {
      if (!inputs.has(path)) return;
      pending = { trigger: relative(dir, path) || basename(path) };
      if (timer) clearTimeout(timer);
      timer = setTimeout(kick, opts.debounceMs ?? 150);
    });
    await new Promise<void>((resolve, reject) => {
      watcher!.once('ready', resolve);
      watcher!.once('error', reject);
    });
    if (opts.signal.aborted) return 0;
    opts.onWatching?.(dir);
    kick();

    await stopped;
    if (timer) clearTimeout(timer);
    await watcher.close();
    watcher = null;
    await running;
    if (failed) throw failed;
    return 0;
  } finally {
    await watcher?.close();
    await closeNow(); // discards: watch mode never writes the image
    await releaseOutputDir(src);
  }
}

const key = (c: FileChange): string => `${c.change} ${c.filesystem}:${c.path}`;

/** What a run changed that the previous one did not, and the reverse. */
function difference(before: FileChange[], now: FileChange[]): { added: FileChange[]; dropped: FileChange[] } {
  const had = new Set(before.map(key));
  const has = new Set(now.map(key));
  return { added: now.filter((c) => !had.has(key(c))), dropped: before.filter((c) => !has.has(key(c))) };
}

/** A run's header, printed as it starts (its log lines follow). */
export function formatWatchStart(run: number, trigger: string | null): string {
  return `[watch] run ${run}${trigger ? ` (${trigger} changed)` : ''}`;
}

/**
 * One run's result as the terminal shows it: a summary line, then the files
 * it changed, or only how they differ from the previous run's (at most `max`).
 */
export function formatWatchRun(r: WatchRun, max = 20): string {
  const head = r.run === 0 ? 'setup' : `run ${r.run}`;
  const lines: string[] = [];
  const secs = (r.ms / 1000).toFixed(1);
  const d = r.sincePrevious;
  const same = d !== null && d.added.length === 0 && d.dropped.length === 0;
  if (r.ok) {
    const what = r.readOnly ? 'read-only images' : `${r.changes.length} file(s) changed${same ? ', the same as the previous run' : ''}, rolled back`;
    lines.push(`[watch] ${head}: ok in ${secs} s, ${r.calls} call(s), ${what}`);
  } else {
    const f = r.failure!;
    const where = f.recipeLocation ?? f.location;
    const at = where ? `${where.file}:${where.line}:${where.column}: ` : '';
    // Compile errors already begin with their place.
    const message = where && f.message.includes(`${where.file}:${where.line}`) ? f.message : `${at}${f.message}`;
    lines.push(`[watch] ${head}: failed: ${f.name && f.name !== 'Error' && !message.startsWith(f.name) ? `${f.name}: ` : ''}${message}`);
    if (r.changes.length) lines.push(`[watch] before failing it changed ${r.changes.length} file(s), rolled back:`);
  }
  const row = (mark: string, c: FileChange): string => `  ${mark}${c.change.padEnd(8)} ${c.filesystem}:${c.path}`;
  const shown = d === null ? r.changes.map((c) => row('', c)) : [...d.added.map((c) => row('+ ', c)), ...d.dropped.map((c) => row('- ', c))];
  if (d !== null && !same) lines.push('[watch] since the previous run (+ now changed, - no longer):');
  lines.push(...shown.slice(0, max));
  if (shown.length > max) lines.push(`  … and ${shown.length - max} more`);
  return lines.join('\n');
}
