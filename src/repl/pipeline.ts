// `guestsh run` as a pipeline step (a Packer post-processor, a CI job): the
// images from a Packer manifest (--packer), one result document (--json to
// stdout, or --result FILE), progress, log and notices as JSON lines on
// stderr with --json, and a bound on the whole run (--deadline). Without
// these options a run prints what it always has.

import { readdir, writeFile } from 'node:fs/promises';
import { UsageError } from '../runtime/errors.js';
import type { PackerImages, RecipeFailure, RunOptions, RunResult, RunStage } from '../runtime/recipe/index.js';
import type { Options } from './options.js';
import type { Stop } from './stop.js';

/** Where a failure points: the recipe's file:line:column when it threw there. */
export interface ResultError {
  kind: RecipeFailure['kind'] | 'usage';
  name: string;
  message: string;
  file?: string | undefined;
  line?: number | undefined;
  column?: number | undefined;
}

/** What a standard-library recipe's list of changes (`{ op, action, path }`) adds up to. */
export interface ChangeSummary {
  changes: number;
  byOp: Record<string, number>;
  byAction: Record<string, number>;
}

/** The one result document of a run (--json, --result). */
export interface ResultDocument extends Partial<RunResult> {
  ok: boolean;
  committed: boolean;
  exitCode: number;
  recipe: string;
  params: Record<string, string>;
  images: { path: string; format?: string | undefined }[];
  packer?: Omit<PackerImages, 'images'> | undefined;
  changeSummary: ChangeSummary | null;
  error: ResultError | null;
}

/** Refuses option combinations that mean nothing, before anything starts. */
export function checkPipelineOptions(o: Options): void {
  if (o.packer && o.drives.length) throw new UsageError("run: --packer takes the images from the Packer manifest; give either --packer or -a, not both");
  if (o.manifest !== undefined && !o.packer) throw new UsageError('run: --manifest is for --packer');
  if (o.watch) {
    const other = o.packer ? '--packer' : o.resultFile !== undefined ? '--result' : o.deadlineMs !== undefined ? '--deadline' : null;
    if (other) throw new UsageError(`run: ${other} does not go with --watch (a watch session never writes the image and runs until stopped)`);
  }
}

/** Writes the run's log, notices and progress to stderr: as lines, or as JSON lines with --json. */
export class RunOutput {
  private readonly t0 = performance.now();
  constructor(private readonly json: boolean) {}

  private event(e: Record<string, unknown>): void {
    process.stderr.write(`${JSON.stringify(e)}\n`);
  }

  readonly log = (message: string): void => {
    if (this.json) this.event({ event: 'log', message });
    else process.stderr.write(`${message}\n`);
  };

  /** The session's notices (the TCG fallback, a recovered commit): printed as a run always has. */
  readonly notice = (message: string): void => {
    if (this.json) this.event({ event: 'notice', message });
    else process.stderr.write(`${message}\n`);
  };

  /** guestsh's own notices about the run. */
  readonly say = (message: string): void => {
    if (this.json) this.event({ event: 'notice', message });
    else process.stderr.write(`guestsh: ${message}\n`);
  };

  readonly stage = (stage: RunStage): void => {
    if (this.json) this.event({ event: 'progress', stage, elapsedMs: Math.round(performance.now() - this.t0) });
  };

  /** A failure: the human error line, or an error event (the line itself is `line`, already formatted). */
  error(line: string, error: ResultError): void {
    if (this.json) this.event({ event: 'error', ...error });
    else process.stderr.write(`${line}\n`);
  }
}

function failureError(f: RecipeFailure): ResultError {
  const where = f.recipeLocation ?? f.location;
  return { kind: f.kind, name: f.name, message: f.message, ...(where ? { file: where.file, line: where.line, column: where.column } : {}) };
}

function thrownError(e: unknown): ResultError {
  const f = (e as { failure?: RecipeFailure }).failure;
  if (f) return failureError(f);
  return { kind: e instanceof UsageError ? 'usage' : 'error', name: (e as Error)?.name ?? 'Error', message: e instanceof Error ? e.message : String(e) };
}

/** Counts a standard-library style change list; null when the recipe returned something else. */
export function summarizeChanges(value: unknown): ChangeSummary | null {
  if (!Array.isArray(value)) return null;
  const isChange = (c: unknown): c is { op: string; action: string } =>
    typeof c === 'object' && c !== null && typeof (c as { op?: unknown }).op === 'string' && typeof (c as { action?: unknown }).action === 'string';
  if (!value.every(isChange)) return null;
  const byOp: Record<string, number> = {};
  const byAction: Record<string, number> = {};
  for (const c of value) {
    byOp[c.op] = (byOp[c.op] ?? 0) + 1;
    byAction[c.action] = (byAction[c.action] ?? 0) + 1;
  }
  return { changes: value.length, byOp, byAction };
}

const toJson = (doc: ResultDocument): string => JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);

async function deliver(o: Options, doc: ResultDocument): Promise<void> {
  if (o.resultFile !== undefined) await writeFile(o.resultFile, `${toJson(doc)}\n`);
  else if (o.json) process.stdout.write(`${toJson(doc)}\n`);
}

/** A bound on the whole run: aborts with a reason that says so. */
function deadlineSignal(ms: number | undefined): { signal: AbortSignal | null; fired: () => boolean; clear: () => void } {
  if (ms === undefined) return { signal: null, fired: () => false, clear: () => {} };
  const c = new AbortController();
  const timer = setTimeout(() => c.abort(new Error(`the run went past its --deadline of ${ms / 1000} s`)), ms);
  return { signal: c.signal, fired: () => c.signal.aborted, clear: () => clearTimeout(timer) };
}

/** `guestsh run` without --watch: find the images (--packer), run, commit or discard, report. Returns the exit status. */
export async function runOnce(o: Options, base: RunOptions, stop: Stop): Promise<number> {
  const { runRecipe, formatRunResult, findPackerImages } = await import('../runtime/recipe/index.js');
  const out = new RunOutput(o.json);
  const doc: ResultDocument = {
    ok: false,
    committed: false,
    exitCode: 1,
    recipe: base.recipe,
    params: base.params ?? {},
    images: base.images.map((i) => ({ path: i.path, format: i.format })),
    changeSummary: null,
    error: null,
  };
  const deadline = deadlineSignal(o.deadlineMs);
  try {
    let run = base;
    if (o.packer) {
      const found = await findPackerImages({ manifest: o.manifest, env: process.env });
      const { images, ...about } = found;
      doc.packer = about;
      doc.images = images;
      run = { ...base, images: images.map((i) => ({ ...i, readonly: o.readonly })) };
      out.say(`--packer: build '${found.build}' (${found.builderType || 'unknown builder'}) from ${found.manifest}: ${images.map((i) => `${i.path} (${i.format})`).join(', ')}`);
    }
    const signal = deadline.signal ? AbortSignal.any([stop.signal, deadline.signal]) : stop.signal;
    let result = await runRecipe({ ...run, signal, confirmStop: () => stop.confirm(), log: out.log, notice: out.notice, onStage: out.stage });
    if (deadline.fired() && !stop.received && !result.committed && result.failure) {
      result = { ...result, exitCode: 3, failure: { ...result.failure, kind: 'timeout', name: 'RunDeadline' } };
    }
    Object.assign(doc, result, { changeSummary: result.ok ? summarizeChanges(result.value) : null, error: result.failure ? failureError(result.failure) : null });
    const printed = formatRunResult(result, { json: false, verbose: o.verbose });
    if (printed.out && !o.json) process.stdout.write(`${printed.out}\n`);
    if (printed.err) out.error(printed.err, doc.error!);
    if (stop.received && result.committed) out.say(`stopped by ${stop.received} after the commit had begun; it was completed`);
    // The default output directory goes when the recipe left nothing there: the document names none then.
    if (!o.outputDir && doc.outputDir && (await readdir(doc.outputDir).catch(() => [])).length === 0) doc.outputDir = undefined;
    await deliver(o, doc);
    return stop.exitCode(result.exitCode);
  } catch (e) {
    if (!o.json && o.resultFile === undefined) throw e;
    doc.error = thrownError(e);
    doc.exitCode = e instanceof UsageError ? e.exitCode : 1;
    if (o.json) out.error('', doc.error);
    await deliver(o, doc);
    // Without --json the human line comes from the CLI, as for any error.
    if (!o.json) throw e;
    return stop.exitCode(doc.exitCode);
  } finally {
    deadline.clear();
  }
}
