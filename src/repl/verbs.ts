// guestsh's verbs beside the shell: `run` (a recipe, or --watch), `check`,
// `batch` and `worker` (many images: ./batch.ts), `init-recipe`, `recover`
// and `status` (an image's transaction state), `mount`/`umount` (mount.ts). Each parses its
// options from the one option table and returns an exit code. A stop signal
// ends `run` early (see stop.ts); the others are quick and run to their end
// (recover's merge must not be cut short), then exit as the signal says.

import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../runtime/errors.js';
import type { RunOptions } from '../runtime/recipe/index.js';
import { type Options, parseArgs, usage, type Verb } from './options.js';
import type { Stop } from './stop.js';

async function runVerb(o: Options, stop: Stop): Promise<number> {
  const [recipe, ...more] = o.operands;
  if (!recipe) throw new UsageError('run: name a recipe (FILE.gfs.ts or guestsh/sysprep, …)');
  if (more.length) throw new UsageError(`run: one recipe at a time (got '${recipe}' and '${more[0]}')`);
  const { checkPipelineOptions, runOnce } = await import('./pipeline.js');
  checkPipelineOptions(o);
  const images = o.drives.flatMap((d) => (d.kind === 'add' ? [{ path: d.path, format: d.format, readonly: o.readonly }] : []));
  if (images.length === 0 && !o.packer) throw new UsageError('run: add an image with -a IMAGE (or --packer in a Packer post-processor)');
  const { KeyReader } = await import('./setup.js');
  const keys = new KeyReader(o);
  const run: RunOptions = {
    recipe,
    images,
    inspect: o.inspector,
    mounts: o.mounts,
    keys: (device, uuid) => keys.forDevice(device, uuid),
    params: o.params,
    timeoutMs: o.timeoutMs,
    memoryMb: o.memoryMb,
    dryRun: o.dryRun,
    typecheck: o.typecheck,
    network: o.network,
    verbose: o.verbose,
    allowBacking: o.allowBacking,
    // Without --output, host-side writes go to a new temp dir, tidied at the end.
    outputDir: o.outputDir ? resolve(o.outputDir) : await mkdtemp(join(tmpdir(), 'guestsh-run-')),
  };
  try {
    // Watch mode ends with a signal as its normal end (status 0).
    if (o.watch) return await watchVerb(run, o.json, stop.signal);
    return await runOnce(o, run, stop);
  } finally {
    if (!o.outputDir) await tidyOutputDir(run.outputDir!, o.json);
  }
}

/** The default output directory is a new temp dir: gone if the recipe wrote nothing there, named if it did (it is the user's to keep). */
async function tidyOutputDir(dir: string, json: boolean): Promise<void> {
  if ((await readdir(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  else {
    const message = `the recipe's output files are in ${dir}`;
    process.stderr.write(json ? `${JSON.stringify({ event: 'notice', message })}\n` : `guestsh: ${message}\n`);
  }
}

/** `run --watch`: a run per save until Ctrl-C (or SIGTERM); the image is never written. */
async function watchVerb(run: RunOptions, json: boolean, signal: AbortSignal): Promise<number> {
  const { watchRecipe, formatWatchRun, formatWatchStart } = await import('../runtime/recipe/index.js');
  return watchRecipe({
    ...run,
    signal,
    // On stderr, with the run's log lines it heads; the results go to stdout.
    onStart: (n, trigger) => process.stderr.write(`${formatWatchStart(n, trigger)}\n`),
    onRun: (r) => process.stdout.write(`${json ? JSON.stringify(r) : formatWatchRun(r)}\n`),
    onWatching: (dir) => process.stderr.write(`guestsh: watching ${dir} for changes; each run is rolled back, the image is never written (Ctrl-C to stop)\n`),
  });
}

async function recipeHelp(recipe: string): Promise<number> {
  const { declarations, describeParams } = await import('../runtime/recipe/declarations.js');
  const { stdRecipeName } = await import('../runtime/recipe/index.js');
  const std = stdRecipeName(recipe);
  if (!std && !existsSync(recipe)) throw new UsageError(`run: recipe '${recipe}' does not exist`);
  const declared = await declarations({ entry: resolve(recipe), std });
  process.stdout.write(`\n${describeParams(declared.params, recipe)}${declared.readOnly ? `${recipe} only reads: its images are opened read-only\n` : ''}`);
  return 0;
}

/** `check`: every type problem of a recipe, one per line; exit 2 if there is any. */
async function checkVerb(o: Options): Promise<number> {
  const [recipe, ...more] = o.operands;
  if (!recipe || more.length) throw new UsageError('usage: guestsh check RECIPE.gfs.ts');
  if (!existsSync(recipe)) throw new UsageError(`check: ${recipe}: no such file`);
  const { typeProblems, formatProblem } = await import('../runtime/recipe/typecheck.js');
  const problems = typeProblems(resolve(recipe));
  if (problems.length > 0) {
    // Every problem on stdout, as tsc lists them; the one error line on stderr.
    for (const p of problems) process.stdout.write(`${formatProblem(p)}\n`);
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more, listed on stdout)` : '';
    process.stderr.write(`guestsh: error: ${formatProblem(problems[0]!)}${more}\n`);
    return 2;
  }
  process.stdout.write(`${recipe}: no type errors\n`);
  return 0;
}

async function initVerb(o: Options): Promise<number> {
  const [name, dir, ...more] = o.operands;
  if (!name || more.length) throw new UsageError('usage: guestsh init-recipe NAME [DIR]');
  const { initRecipe } = await import('../runtime/recipe/index.js');
  const made = await initRecipe(name, dir);
  process.stdout.write(`${made.recipe}\n${made.tsconfig}\n`);
  if (made.typesUnresolved) {
    process.stderr.write("guestsh: an editor or tsc in that directory finds guestsh's types once the package is installed there (npm install --save-dev guestsh); 'guestsh check' type-checks without it\n");
  }
  return 0;
}

function oneImage(verb: Verb, o: Options): string {
  if (o.operands.length !== 1) throw new UsageError(`usage: guestsh ${verb} IMAGE [--json]${verb === 'recover' ? ' [--abandon]' : ''}`);
  return o.operands[0]!;
}

async function recoverVerb(o: Options): Promise<number> {
  const image = oneImage('recover', o);
  const { recover } = await import('../runtime/session/transaction.js');
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
  const { txStatus } = await import('../runtime/session/transaction.js');
  const st = await txStatus(image);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ image, ...st })}\n`);
    return 0;
  }
  const lines = [
    st.writerPid !== null
      ? `open for writing by guestsh pid ${st.writerPid}`
      : st.otherHostWriter
        ? `the lock note names guestsh pid ${st.otherHostWriter.pid} on ${st.otherHostWriter.host}, another host (this one cannot see whether it still runs; while it does, it holds the image)`
        : 'no writer',
    st.interruptedMerge
      ? "interrupted commit: the next open completes it (or run 'guestsh recover')"
      : st.pendingOverlay
        ? st.writerPid !== null
          ? 'uncommitted changes of the running session'
          : st.otherHostWriter
            ? "uncommitted changes of that host's session (if it died there, the next open that gets the lock removes them)"
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
  check: toTheEnd(checkVerb),
  batch: async (o, stop) => (await import('./batch.js')).batchVerb(o, stop),
  worker: async (o, stop) => (await import('./batch.js')).workerVerb(o, stop),
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
    // `guestsh run RECIPE --help`: and what that recipe takes.
    if (verb === 'run' && o.operands[0]) return recipeHelp(o.operands[0]);
    return Promise.resolve(0);
  }
  return f(o, stop);
}
