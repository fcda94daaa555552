// How `guestsh run` prints a result: one summary line (or JSON with --json).

import type { RunResult } from './run.js';

export function formatRunResult(r: RunResult, opts: { json?: boolean; verbose?: boolean } = {}): string {
  if (opts.json) {
    return JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
  }
  const lines: string[] = [];
  const t = r.timings;
  if (r.ok) {
    lines.push(
      r.committed
        ? `recipe succeeded: ${r.calls} call(s); changes committed`
        : `recipe succeeded (${r.changes ? 'dry run' : 'read-only images'}): ${r.calls} call(s); nothing was written`,
    );
    for (const c of r.changes ?? []) lines.push(`  ${c.change.padEnd(8)} ${c.filesystem}:${c.path}`);
  } else {
    const f = r.failure!;
    const where = f.recipeLocation ?? f.location;
    lines.push(`guestsh: ${where ? `${where.file}:${where.line}:${where.column}: ` : ''}${f.name && f.name !== 'Error' ? `${f.name}: ` : ''}${f.message}`);
    if (opts.verbose && f.stack) lines.push(f.stack);
    lines.push('guestsh: the image was not changed');
  }
  if (opts.verbose) {
    lines.push(
      `timings: compile ${t.compileMs.toFixed(0)} ms, isolate ${t.isolateMs.toFixed(0)} ms, launch ${t.launchMs.toFixed(0)} ms, run ${t.runMs.toFixed(0)} ms, commit ${t.commitMs.toFixed(0)} ms`,
    );
  }
  return lines.join('\n');
}
