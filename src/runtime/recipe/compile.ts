// Recipe compilation: TypeScript → ES module JavaScript with @swc/core (no
// type checking; editors and `tsc` do that), keeping a source map per module
// so that errors and stack traces raised in the isolate can be reported at
// the .gfs.ts file's own line and column.

import { createRequire } from 'node:module';
import { decode, type SourceMapMappings } from '@jridgewell/sourcemap-codec';

type Swc = typeof import('@swc/core');
let swc: Swc | null = null;
function loadSwc(): Swc {
  swc ??= createRequire(import.meta.url)('@swc/core') as Swc;
  return swc;
}

export interface CompiledModule {
  /** Absolute host path of the source (also the module's name inside the isolate). */
  path: string;
  code: string;
  /** Decoded source map: per generated line, [genCol, srcIdx, origLine, origCol] segments. */
  mappings: SourceMapMappings | null;
}

export class RecipeCompileError extends Error {
  override name = 'RecipeCompileError';
  constructor(
    message: string,
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
  ) {
    super(message);
  }
}

/** Compiles one module. Plain .js files (the built standard library) pass through unchanged. */
export function compileModule(path: string, source: string): CompiledModule {
  if (/\.(m?js)$/.test(path)) return { path, code: source, mappings: null };
  let out: { code: string; map?: string };
  try {
    out = loadSwc().transformSync(source, {
      filename: path,
      sourceMaps: true,
      // Keep the recipe's own line structure as far as possible.
      minify: false,
      isModule: true,
      jsc: {
        parser: { syntax: 'typescript', tsx: false },
        target: 'es2022',
        keepClassNames: true,
      },
      module: { type: 'es6' },
    });
  } catch (e) {
    throw compileError(path, e);
  }
  const map = out.map ? (JSON.parse(out.map) as { mappings: string }) : null;
  return { path, code: out.code, mappings: map ? decode(map.mappings) : null };
}

// swc's messages look like "  x Expected ';', got 'foo'\n   ,-[/path/x.gfs.ts:3:1]\n ..."
// followed by a Rust backtrace: one line with the place is what a person needs.
export function compileError(path: string, e: unknown): RecipeCompileError {
  const text = e instanceof Error ? e.message : String(e);
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  const where = /\[([^\]\n]*?):(\d+):(\d+)\]/.exec(plain);
  const line = where ? Number(where[2]) : undefined;
  // The caret line inside swc's snippet points at the column more precisely.
  let column = where ? Number(where[3]) : undefined;
  const snippet = plain.split('\n');
  const caretLine = snippet.findIndex((l) => /^\s*:\s*\^/.test(l));
  if (caretLine > 0 && line !== undefined) {
    const numbered = snippet[caretLine - 1]!;
    const m = /^\s*(\d+)\s*\|/.exec(numbered);
    if (m && Number(m[1]) === line) column = snippet[caretLine]!.indexOf('^') - numbered.indexOf('|') - 1; // the source starts after '| '
  }
  const first = plain.split('\n').map((l) => l.trim()).find((l) => l.startsWith('x ') || l.startsWith('×'));
  const msg = (first ?? plain.split('\n')[0] ?? 'syntax error').replace(/^(x|×)\s*/, '');
  const loc = line !== undefined ? `:${line}${column !== undefined ? `:${column}` : ''}` : '';
  return new RecipeCompileError(`${path}${loc}: ${msg}`, path, line, column);
}

/** Original (1-based line, 1-based column) for a generated position (1-based line and column). */
export function originalPosition(mod: CompiledModule, line: number, column: number): { line: number; column: number } | null {
  if (!mod.mappings) return null;
  const segs = mod.mappings[line - 1];
  if (!segs || segs.length === 0) return null;
  const col0 = column - 1;
  let best: (typeof segs)[number] | undefined;
  for (const s of segs) {
    if (s[0] <= col0) best = s;
    else break;
  }
  best ??= segs[0];
  if (!best || best.length < 4) return null;
  return { line: best[2]! + 1, column: best[3]! + 1 + Math.max(0, col0 - best[0]) };
}
