// Type-checking a recipe before anything launches: a wrong call found in a
// second, not after a boot and an inspection. The compiler is TypeScript's
// own (swc only strips types), with the options a recipe runs under: the
// sandbox's globals (ES2022, no Node), 'guestsh' as the recipe-side types and
// 'guestsh/NAME' as the standard library, from this installation. A clean
// result is remembered by the content of the recipe's own files, so an
// unchanged recipe costs a hash on the next run.

import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TS from 'typescript';
import { UsageError } from '../errors.js';
import { cacheRoot } from '../cache.js';
import { stdlibDir } from './sandbox.js';

export interface TypeProblem {
  file: string;
  line: number;
  column: number;
  /** `TS2345: Argument of type …` (the compiler's first message line, with its code). */
  message: string;
}

/** A recipe that does not type-check: its first problem, where it is, and how many more. */
export class RecipeTypeErrors extends UsageError {
  override name = 'RecipeTypeErrors';
  constructor(readonly problems: TypeProblem[]) {
    const [first] = problems;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more: 'guestsh check ${first!.file}' lists them)` : '';
    super(`${formatProblem(first!)}${more}; nothing was launched ('--no-typecheck' runs it anyway)`);
  }
}

export function formatProblem(p: TypeProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

const here = dirname(fileURLToPath(import.meta.url));
const packageSources = join(here, '..', '..') + sep;
// The recipe-side 'guestsh' module: types.ts beside this file (types.d.ts when built).
const recipeTypes = join(here, 'types');
// The sandbox has no Node: buffers from guestfs calls are plain Uint8Array.
const ENV_FILE = join(here, 'guestsh-recipe-env.d.ts');
const ENV_SOURCE = 'type Buffer = Uint8Array;\n';

let tsModule: typeof TS | undefined;
/** TypeScript's compiler, loaded on first use (the type check and the reading of declarations share it). */
export function typescript(): typeof TS {
  tsModule ??= createRequire(import.meta.url)('typescript') as typeof TS;
  return tsModule;
}

/** Every type problem in the recipe `entry` and the files it imports (the standard library's own are not the user's). */
export function typeProblems(entry: string): TypeProblem[] {
  const ts = typescript();
  const options: TS.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts'],
    types: [],
    strict: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    paths: { guestsh: [recipeTypes], 'guestsh/*': [join(stdlibDir, '*')] },
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile: read } = host;
  const typed = withContextType(ts, entry, read.call(host, entry) ?? '');
  host.getSourceFile = (name, lang, ...rest) =>
    name === ENV_FILE ? ts.createSourceFile(name, ENV_SOURCE, lang)
      : name === entry ? ts.createSourceFile(name, typed.source, lang)
        : getSourceFile.call(host, name, lang, ...rest);
  host.fileExists = (name) => name === ENV_FILE || fileExists.call(host, name);
  host.readFile = (name) => (name === ENV_FILE ? ENV_SOURCE : read.call(host, name));
  const program = ts.createProgram({ rootNames: [entry, ENV_FILE], options, host });
  // guestsh's own files (src/ from source, dist/src/ built) are checked by its build, under Node's types, not here.
  const ours = (file: string): boolean => file === ENV_FILE || file.startsWith(packageSources);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || !ours(d.file.fileName))
    .map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n')[0]!;
      const message = `TS${d.code}: ${text}`;
      if (!d.file || d.start === undefined) return { file: entry, line: 1, column: 1, message };
      // Positions past the annotation guestsh inserted are the user's minus its length.
      const inserted = d.file.fileName === entry && typed.at !== null && d.start >= typed.at ? ANNOTATION.length : 0;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      const sameLine = inserted > 0 && d.file.getLineAndCharacterOfPosition(typed.at!).line === line;
      return { file: shown(d.file.fileName), line: line + 1, column: character + 1 - (sameLine ? inserted : 0), message };
    });
}

// The sandbox calls a recipe's default export with a RecipeContext; a recipe
// written without annotations (`export default async ({ g }) => …`) is checked
// as if it said so, so a mistyped call on g is found there too.
const ANNOTATION = `: import('guestsh').RecipeContext`;

function withContextType(ts: typeof TS, file: string, source: string): { source: string; at: number | null } {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true);
  let fn: TS.SignatureDeclarationBase | undefined;
  for (const st of sf.statements) {
    if (ts.isExportAssignment(st) && !st.isExportEquals) {
      const e = st.expression;
      if (ts.isArrowFunction(e) || ts.isFunctionExpression(e)) fn = e;
    } else if (ts.isFunctionDeclaration(st) && st.modifiers?.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword)) {
      fn = st;
    }
  }
  const first = fn?.parameters[0];
  if (!first || first.type || first.dotDotDotToken) return { source, at: null };
  const at = (first.questionToken ?? first.name).end;
  return { source: source.slice(0, at) + ANNOTATION + source.slice(at), at };
}

/** A path as the user would type it: relative to the working directory when inside it. */
function shown(file: string): string {
  const r = relative(process.cwd(), file);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : file;
}

/**
 * Type-checks a recipe whose own module files are `files` (entry first), unless
 * these exact contents passed before with this installation of guestsh.
 * Throws RecipeTypeErrors.
 */
export async function typecheckRecipe(files: string[]): Promise<{ cached: boolean }> {
  const key = createHash('sha256').update(here);
  const typesFile = ['.d.ts', '.ts'].map((x) => recipeTypes + x).find((f) => existsSync(f));
  if (typesFile) key.update(String(statSync(typesFile).mtimeMs));
  for (const f of files) key.update(`\0${f}\0`).update(await readFile(f));
  const marker = join(cacheRoot(), 'typecheck', key.digest('hex').slice(0, 32));
  if (existsSync(marker)) return { cached: true };
  const problems = typeProblems(files[0]!);
  if (problems.length > 0) throw new RecipeTypeErrors(problems);
  await mkdir(dirname(marker), { recursive: true });
  await writeFile(marker, '');
  return { cached: false };
}
