// guestsh's verbs beside the shell: `run` (a recipe), `init-recipe`,
// `recover` and `status` (an image's transaction state). Each returns an exit
// code; null means "not a verb: the shell handles this command line".

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../runtime/errors.js';
import { recover, txStatus } from '../runtime/session/transaction.js';

type Verb = (args: string[]) => Promise<number>;

function takeValue(args: string[], i: number, flag: string): string {
  const v = args[i + 1];
  if (v === undefined) throw new UsageError(`${flag} needs a value; see guestsh --help`);
  return v;
}

function positiveNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag}: '${v}' is not a positive number`);
  return n;
}

async function runVerb(args: string[]): Promise<number> {
  const { runRecipe, formatRunResult } = await import('../runtime/recipe/index.js');
  type Opts = Parameters<typeof runRecipe>[0];
  const o: Opts = { recipe: '', images: [], mounts: [], params: {} };
  let format: string | undefined;
  let readonly = false;
  let json = false;
  let watch = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => inline ?? takeValue(args, i++, flag);
    switch (flag) {
      case '-a':
      case '--add':
      case '--image':
        o.images.push({ path: value(), format, readonly });
        break;
      case '--format':
        format = value() || undefined;
        break;
      case '--ro':
        readonly = true;
        for (const img of o.images) img.readonly = true;
        break;
      case '-i':
      case '--inspector':
        o.inspect = true;
        break;
      case '-m':
      case '--mount': {
        const [device, mountpoint = '/', options, fstype] = value().split(':');
        o.mounts!.push({ device: device!, mountpoint, options, fstype });
        break;
      }
      case '--param': {
        const kv = value();
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new UsageError(`--param: '${kv}' is not key=value`);
        o.params![kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '--timeout':
        o.timeoutMs = positiveNumber(value(), flag) * 1000;
        break;
      case '--memory':
        o.memoryMb = positiveNumber(value(), flag);
        break;
      case '--output':
        o.outputDir = resolve(value());
        break;
      case '--dry-run':
        o.dryRun = true;
        break;
      case '--network':
        o.network = true;
        break;
      case '--json':
        json = true;
        break;
      case '--watch':
        watch = true;
        break;
      case '-v':
      case '--verbose':
        o.verbose = true;
        break;
      default:
        if (a.startsWith('-')) throw new UsageError(`run: unknown option '${a}'; see guestsh --help`);
        if (o.recipe) throw new UsageError(`run: one recipe at a time (got '${o.recipe}' and '${a}')`);
        o.recipe = a;
    }
  }
  if (!o.recipe) throw new UsageError('run: name a recipe (FILE.gfs.ts or guestsh/sysprep, …)');
  if (o.images.length === 0) throw new UsageError('run: add an image with -a IMAGE');
  // Without --output, host-side writes go to a new temp dir, tidied at the end.
  const defaultOutput = o.outputDir ? null : await mkdtemp(join(tmpdir(), 'guestsh-run-'));
  o.outputDir ??= defaultOutput!;
  try {
    if (watch) return await watchVerb(o, json);
    const result = await runRecipe(o);
    process.stdout.write(`${formatRunResult(result, { json, verbose: o.verbose })}\n`);
    return result.exitCode;
  } finally {
    if (defaultOutput) await tidyOutputDir(defaultOutput);
  }
}

/** The default output directory is a new temp dir: gone if the recipe wrote nothing there, named if it did (it is the user's to keep). */
async function tidyOutputDir(dir: string): Promise<void> {
  if ((await readdir(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  else process.stderr.write(`guestsh: the recipe's output files are in ${dir}\n`);
}

/** `run --watch`: a run per save until Ctrl-C (or SIGTERM); the image is never written. */
async function watchVerb(o: Parameters<typeof import('../runtime/recipe/index.js').runRecipe>[0], json: boolean): Promise<number> {
  const { watchRecipe, formatWatchRun } = await import('../runtime/recipe/index.js');
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, stop);
  try {
    return await watchRecipe({
      ...o,
      signal: ac.signal,
      onRun: (r) => process.stdout.write(`${json ? JSON.stringify(r) : formatWatchRun(r)}\n`),
      onWatching: (dir) => process.stderr.write(`guestsh: watching ${dir} for changes; each run is rolled back, the image is never written (Ctrl-C to stop)\n`),
    });
  } finally {
    for (const sig of signals) process.off(sig, stop);
  }
}

async function initVerb(args: string[]): Promise<number> {
  const [name, dir] = args;
  if (!name || args.length > 2) throw new UsageError('usage: guestsh init-recipe NAME [DIR]');
  const { initRecipe } = await import('../runtime/recipe/index.js');
  const made = await initRecipe(name, dir);
  process.stdout.write(`${made.recipe}\n${made.tsconfig}\n`);
  return 0;
}

function oneImage(verb: string, args: string[]): string {
  const images = args.filter((a) => a !== '--json');
  if (images.length !== 1) throw new UsageError(`usage: guestsh ${verb} IMAGE [--json]`);
  return images[0]!;
}

async function recoverVerb(args: string[]): Promise<number> {
  const image = oneImage('recover', args);
  const outcome = await recover(image);
  const said = {
    clean: 'nothing to do: no interrupted commit and no abandoned changes',
    'rolled-forward': 'completed an interrupted commit',
    'discarded-abandoned-run': "removed an interrupted run's uncommitted changes (the image was never written)",
  }[outcome];
  process.stdout.write(args.includes('--json') ? `${JSON.stringify({ image, outcome })}\n` : `${image}: ${said}\n`);
  return 0;
}

async function statusVerb(args: string[]): Promise<number> {
  const image = oneImage('status', args);
  const st = await txStatus(image);
  if (args.includes('--json')) {
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

const verbs: Record<string, Verb> = {
  run: runVerb,
  'init-recipe': initVerb,
  recover: recoverVerb,
  status: statusVerb,
};

/**
 * Runs `argv` if it starts with a verb. `run` is a verb only as the first
 * word: after options (`guestsh -a disk.img run : …`) it is guestfish's
 * launch command, as ever.
 */
export function runVerbIfAny(argv: readonly string[]): Promise<number> | null {
  const verb = verbs[argv[0] ?? ''];
  return verb ? verb(argv.slice(1)) : null;
}
