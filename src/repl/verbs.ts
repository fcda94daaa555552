// guestsh's verbs beside the shell: `run` (a recipe, or --watch), `init-recipe`,
// `recover` and `status` (an image's transaction state), `mount`/`umount` (mount.ts). Each parses its
// options from the one option table and returns an exit code. A stop signal
// ends `run` early (see stop.ts); the others are quick and run to their end
// (recover's merge must not be cut short), then exit as the signal says.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../runtime/errors.js';
import { recover, txStatus } from '../runtime/session/transaction.js';
import type { RunOptions } from '../runtime/recipe/index.js';
import { type Options, parseArgs, usage, type Verb } from './options.js';
import { KeyReader } from './setup.js';
import type { Stop } from './stop.js';

async function runVerb(o: Options, stop: Stop): Promise<number> {
  const [recipe, ...more] = o.operands;
  if (!recipe) throw new UsageError('run: name a recipe (FILE.gfs.ts or guestsh/sysprep, …)');
  if (more.length) throw new UsageError(`run: one recipe at a time (got '${recipe}' and '${more[0]}')`);
  const images = o.drives.flatMap((d) => (d.kind === 'add' ? [{ path: d.path, format: d.format, readonly: o.readonly }] : []));
  if (images.length === 0) throw new UsageError('run: add an image with -a IMAGE');
  const { runRecipe, formatRunResult } = await import('../runtime/recipe/index.js');
  const keys = new KeyReader(o);
  const run: RunOptions = {
    recipe,
    images,
    inspect: o.inspector,
    mounts: o.mounts,
    keys: (device) => keys.read(device),
    params: o.params,
    timeoutMs: o.timeoutMs,
    memoryMb: o.memoryMb,
    dryRun: o.dryRun,
    network: o.network,
    verbose: o.verbose,
    allowBacking: o.allowBacking,
    // Without --output, host-side writes go to a new temp dir, tidied at the end.
    outputDir: o.outputDir ? resolve(o.outputDir) : await mkdtemp(join(tmpdir(), 'guestsh-run-')),
  };
  try {
    // Watch mode ends with a signal as its normal end (status 0).
    if (o.watch) return await watchVerb(run, o.json, stop.signal);
    const result = await runRecipe({ ...run, signal: stop.signal });
    const printed = formatRunResult(result, { json: o.json, verbose: o.verbose });
    if (printed.out) process.stdout.write(`${printed.out}\n`);
    if (printed.err) process.stderr.write(`${printed.err}\n`);
    if (stop.received && result.committed) process.stderr.write(`guestsh: stopped by ${stop.received} after the commit had begun; it was completed\n`);
    return stop.exitCode(result.exitCode);
  } finally {
    if (!o.outputDir) await tidyOutputDir(run.outputDir!);
  }
}

/** The default output directory is a new temp dir: gone if the recipe wrote nothing there, named if it did (it is the user's to keep). */
async function tidyOutputDir(dir: string): Promise<void> {
  if ((await readdir(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  else process.stderr.write(`guestsh: the recipe's output files are in ${dir}\n`);
}

/** `run --watch`: a run per save until Ctrl-C (or SIGTERM); the image is never written. */
async function watchVerb(run: RunOptions, json: boolean, signal: AbortSignal): Promise<number> {
  const { watchRecipe, formatWatchRun } = await import('../runtime/recipe/index.js');
  return watchRecipe({
    ...run,
    signal,
    onRun: (r) => process.stdout.write(`${json ? JSON.stringify(r) : formatWatchRun(r)}\n`),
    onWatching: (dir) => process.stderr.write(`guestsh: watching ${dir} for changes; each run is rolled back, the image is never written (Ctrl-C to stop)\n`),
  });
}

async function initVerb(o: Options): Promise<number> {
  const [name, dir, ...more] = o.operands;
  if (!name || more.length) throw new UsageError('usage: guestsh init-recipe NAME [DIR]');
  const { initRecipe } = await import('../runtime/recipe/index.js');
  const made = await initRecipe(name, dir);
  process.stdout.write(`${made.recipe}\n${made.tsconfig}\n`);
  return 0;
}

function oneImage(verb: Verb, o: Options): string {
  if (o.operands.length !== 1) throw new UsageError(`usage: guestsh ${verb} IMAGE [--json]${verb === 'recover' ? ' [--abandon]' : ''}`);
  return o.operands[0]!;
}

async function recoverVerb(o: Options): Promise<number> {
  const image = oneImage('recover', o);
  const outcome = await recover(image, o.abandon ? 'abandon' : 'recover');
  const said = {
    clean: 'nothing to do: no interrupted commit and no abandoned changes',
    'rolled-forward': 'completed an interrupted commit',
    'discarded-abandoned-run': "removed an interrupted run's uncommitted changes (the image was never written)",
    'abandoned-interrupted-commit': 'dropped an interrupted commit without completing it: the image may hold part of it; check its filesystems (e2fsck, xfs_repair, …)',
  }[outcome];
  process.stdout.write(o.json ? `${JSON.stringify({ image, outcome })}\n` : `${image}: ${said}\n`);
  return 0;
}

async function statusVerb(o: Options): Promise<number> {
  const image = oneImage('status', o);
  const st = await txStatus(image);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ image, ...st })}\n`);
    return 0;
  }
  const lines = [
    st.writerPid !== null ? `open for writing by guestsh pid ${st.writerPid}` : 'no writer',
    st.interruptedMerge
      ? "interrupted commit: the next open completes it (or run 'guestsh recover')"
      : st.pendingOverlay
        ? st.writerPid !== null
          ? 'uncommitted changes of the running session'
          : "abandoned changes of an interrupted run: the next open removes them (or run 'guestsh recover')"
        : 'no pending changes',
  ];
  process.stdout.write(`${image}: ${lines.join('; ')}\n`);
  return 0;
}

/** A verb that runs to its end whatever arrives, then exits as a signal that came says. */
const toTheEnd =
  (f: (o: Options) => Promise<number>) =>
  async (o: Options, stop: Stop): Promise<number> =>
    stop.exitCode(await f(o));

const mountVerb = async (o: Options, stop: Stop): Promise<number> => (await import('./mount.js')).mountVerb(o, stop);
const umountVerb = async (o: Options): Promise<number> => (await import('./mount.js')).umountVerb(o);

const verbs: Partial<Record<Verb, (o: Options, stop: Stop) => Promise<number>>> = {
  mount: mountVerb,
  umount: toTheEnd(umountVerb),
  run: runVerb,
  'init-recipe': toTheEnd(initVerb),
  recover: toTheEnd(recoverVerb),
  status: toTheEnd(statusVerb),
};

/**
 * Runs `argv` if it starts with a verb. `run` is a verb only as the first
 * word: after options (`guestsh -a disk.img run : …`) it is guestfish's
 * launch command, as ever.
 */
export function runVerbIfAny(argv: readonly string[], stop: Stop): Promise<number> | null {
  const verb = argv[0] as Verb;
  const f = verb !== 'shell' ? verbs[verb] : undefined;
  if (!f) return null;
  const o = parseArgs(verb, argv.slice(1));
  if (o.help) {
    process.stdout.write(usage(verb));
    return Promise.resolve(0);
  }
  return f(o, stop);
}
