// How `guestsh run` prints a result: a summary on stdout (or JSON with
// --json), and a failure as one error line on stderr, in the style of every
// other guestsh error (the stack follows with -v).

import type { RunResult } from './run.js';

/** The error names a user learns something from; a setup error's class (UsageError, OpenError) is not one. */
const UNNAMED = new Set(['Error', 'UsageError', 'OpenError']);

export function formatRunResult(r: RunResult, opts: { json?: boolean; verbose?: boolean } = {}): { out: string; err: string } {
  if (opts.json) {
    return { out: JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2), err: '' };
  }
  const lines: string[] = [];
  const errors: string[] = [];
  const t = r.timings;
  if (r.ok) {
    lines.push(
      r.committed
        ? `recipe succeeded: ${r.calls} call(s); changes committed`
        : `recipe succeeded (${r.changes ? 'dry run' : 'it wrote nothing, or its images were read-only'}): ${r.calls} call(s); nothing was committed`,
    );
    for (const c of r.changes ?? []) lines.push(`  ${c.change.padEnd(8)} ${c.filesystem}:${c.path}`);
  } else {
    const f = r.failure!;
    const where = f.recipeLocation ?? f.location;
    const message = `${where ? `${where.file}:${where.line}:${where.column}: ` : ''}${f.name && !UNNAMED.has(f.name) ? `${f.name}: ` : ''}${f.message}`;
    errors.push(`guestsh: error: ${message.replace(/\n/g, '\\n')} (the image was not changed)`);
    if (opts.verbose && f.stack) errors.push(f.stack);
  }
  if (opts.verbose) {
    lines.push(
      `timings: compile ${t.compileMs.toFixed(0)} ms, isolate ${t.isolateMs.toFixed(0)} ms, launch ${t.launchMs.toFixed(0)} ms, run ${t.runMs.toFixed(0)} ms, commit ${t.commitMs.toFixed(0)} ms`,
    );
  }
  return { out: lines.join('\n'), err: errors.join('\n') };
}
