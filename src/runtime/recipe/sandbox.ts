// The sandbox TypeScript runs in, recipes and the shell's prompt alike: an
// isolated-vm isolate holding a `g` whose every method is a bridge to the
// host session. Nothing else of the host is reachable: no require, process,
// timers, network or file system; every call is checked first (recipes: the
// PathPolicy and the refused actions; the prompt: host paths under its
// directory). A recipe run gets one isolate with its modules and the
// standard library; the prompt keeps one for the shell session.

import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type IvmNs from 'isolated-vm';
import { createApi } from '../../spec/api.js';
import type { ArgValue, OptArgs, RetValue } from '../../spec/values.js';
import { apiMethods } from '../../spec/api.generated.js';
import { compileModule, type CompiledModule, originalPosition, RecipeCompileError } from './compile.js';
import { checkCall, type PathPolicy } from './policy.js';

type Ivm = typeof IvmNs;
let ivmModule: Ivm | null = null;
function loadIvm(): Ivm {
  if (ivmModule) return ivmModule;
  try {
    ivmModule = createRequire(import.meta.url)('isolated-vm') as Ivm;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`recipes need the isolated-vm module (npm ci builds it; node must run with --no-node-snapshot): ${msg}`);
  }
  return ivmModule;
}

/** Anything that can run a libguestfs action: a Session. */
export interface CallTarget {
  call(name: string, args: readonly ArgValue[], optargs?: OptArgs): Promise<RetValue>;
  g: { savepoint(name: string): Promise<void>; rollbackTo(name: string): Promise<void> };
}

/** Where the standard library's modules live (src/stdlib/*.ts from source, dist/src/stdlib/*.js when built). */
export const stdlibDir = fileURLToPath(new URL('../../stdlib/', import.meta.url));

export const STDLIB_MODULES = ['sysprep', 'customize', 'firstboot', 'hardening', 'inspect', 'packages', 'util'] as const;

/** The standard-library modules that are also ready recipes (a default export). */
export const STDLIB_RECIPES = ['sysprep', 'customize', 'firstboot', 'hardening', 'inspect'] as const;

export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

export interface RecipeFailure {
  kind: 'error' | 'compile' | 'timeout' | 'memory' | 'policy';
  name: string;
  message: string;
  /** Where it was thrown, in the recipe's (or the standard library's) TypeScript. */
  location: SourceLocation | null;
  /** The innermost frame in a recipe file of the user (not the standard library). */
  recipeLocation: SourceLocation | null;
  /** The stack trace with every position mapped back to the .ts sources. */
  stack: string;
  errno?: string | undefined;
}

export class RecipeFailed extends Error {
  override name = 'RecipeFailed';
  constructor(readonly failure: RecipeFailure) {
    const where = failure.recipeLocation ?? failure.location;
    super(`${where ? `${where.file}:${where.line}:${where.column}: ` : ''}${failure.name === 'Error' ? '' : `${failure.name}: `}${failure.message}`);
  }
}

export interface SandboxOptions {
  /** Absolute path of the entry recipe, or a synthetic source for standard-library recipes. */
  entry: string;
  entrySource?: string | undefined;
  params: Record<string, string>;
  target: CallTarget;
  policy: PathPolicy;
  memoryMb: number;
  timeoutMs: number;
  log: (line: string) => void;
  /** Stops the recipe (the isolate is disposed), e.g. Ctrl-C in watch mode. */
  signal?: AbortSignal | undefined;
}

export interface SandboxTimings {
  compileMs: number;
  isolateMs: number;
  instantiateMs: number;
  runMs: number;
}

export interface SandboxResult {
  ok: boolean;
  value?: unknown;
  failure?: RecipeFailure;
  timings: SandboxTimings;
  calls: number;
  /** The recipe's own module files this run loaded (not the standard library's). */
  modules: string[];
}

// Compiled modules keyed by path, reused while the source text is the same
// (watch mode and repeated runs). Keyed by content, not mtime: two saves
// within one timestamp tick must not run a stale compile.
const compileCache = new Map<string, { source: string; mod: CompiledModule }>();

async function loadCompiled(path: string): Promise<CompiledModule> {
  const source = await readFile(path, 'utf8');
  const hit = compileCache.get(path);
  if (hit && hit.source === source) return hit.mod;
  const mod = compileModule(path, source);
  compileCache.set(path, { source, mod });
  return mod;
}

const GUESTSH_MODULE = `const h = globalThis[Symbol.for('guestsh.host')];
export const GuestfsError = h.GuestfsError;
export const UsageError = h.UsageError;
export const RecipeError = h.RecipeError;
export function defineRecipe(f) { return f; }
export default { defineRecipe };
`;

// Runs inside the isolate before any recipe module. $0: the call bridge
// (host Reference), $1: the log bridge, $2: method names, $3: params.
const BOOTSTRAP = `
'use strict';
const callRef = $0, logRef = $1, methods = $2, params = Object.freeze($3);
class GuestfsError extends Error { constructor(m, action, errno) { super(m); this.name = 'GuestfsError'; this.action = action; this.errno = errno; } }
class UsageError extends Error { constructor(m) { super(m); this.name = 'UsageError'; } }
class RecipeError extends Error { constructor(m) { super(m); this.name = 'RecipeError'; } }
const classes = { GuestfsError, UsageError };
function fmt(v) {
  if (typeof v === 'string') return v;
  if (v instanceof Error) return v.stack || String(v);
  try { return JSON.stringify(v, (k, x) => typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? '<' + x.length + ' bytes>' : x); }
  catch { return String(v); }
}
const log = (...a) => { logRef.applyIgnored(undefined, [a.map(fmt).join(' ')], { arguments: { copy: true } }); };
async function bridge(method, args) {
  const r = await callRef.apply(undefined, [method, args], { arguments: { copy: true }, result: { promise: true, copy: true } });
  if (r.ok) return r.value;
  const C = classes[r.name];
  let e;
  if (r.name === 'GuestfsError') e = new GuestfsError(r.message, r.action, r.errno);
  else if (C) e = new C(r.message);
  else { e = new Error(r.message); e.name = r.name; }
  throw e;
}
const g = {};
for (const m of methods) Object.defineProperty(g, m, { value: (...args) => bridge(m, args), enumerable: true });
Object.freeze(g);
const ctx = Object.freeze({ g, params, log });
const host = Object.freeze({ GuestfsError, UsageError, RecipeError, ctx });
Object.defineProperty(globalThis, Symbol.for('guestsh.host'), { value: host });
globalThis.console = Object.freeze({ log, info: log, warn: log, error: log, debug: log });
`;

const RUN_ENTRY = `
return (async () => {
  const f = globalThis[Symbol.for('guestsh.entry')];
  const { ctx } = globalThis[Symbol.for('guestsh.host')];
  if (typeof f !== 'function') return { ok: false, name: 'RecipeError', message: 'the recipe has no default export function (write: export default async ({ g, params, log }) => { ... })', stack: '' };
  try {
    const value = await f(ctx);
    let copyable;
    try { copyable = value === undefined ? undefined : JSON.parse(JSON.stringify(value, (k, x) => typeof x === 'bigint' ? x.toString() : x)); } catch { copyable = undefined; }
    return { ok: true, value: copyable };
  } catch (e) {
    const isObj = typeof e === 'object' && e !== null;
    return { ok: false, name: isObj && typeof e.name === 'string' ? e.name : 'Error', message: isObj && 'message' in e ? String(e.message) : String(e),
             stack: isObj && typeof e.stack === 'string' ? e.stack : '', errno: isObj && typeof e.errno === 'string' ? e.errno : undefined };
  }
})();
`;

/** A host value made safe to copy into the isolate (Buffers can share a pool with unrelated host data). */
function toIsolate(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(toIsolate);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toIsolate(x)]));
  return v;
}

const LOG_LIMIT = 8 * 1024 * 1024;

/** What an isolate's `g` talks to, and what it is allowed to ask. */
export interface SandboxSetup {
  target: CallTarget;
  /** Checks one call and returns its arguments with host paths made safe, or throws RecipePolicyError. */
  check: (name: string, args: readonly ArgValue[], optargs: OptArgs | undefined) => Promise<ArgValue[]>;
  params: Record<string, string>;
  memoryMb: number;
  log: (line: string) => void;
}

/**
 * One isolate with guestsh's bootstrap in its context: a frozen `g` whose
 * methods are bridges to the host (every call checked first), `console`
 * writing to the log, and the 'guestsh' module's classes. Recipes run one
 * per isolate; the prompt keeps one for the whole shell session.
 */
export class Sandbox {
  /** Bridged calls made so far. */
  calls = 0;

  private constructor(
    readonly isolate: IvmNs.Isolate,
    readonly context: IvmNs.Context,
    private readonly refs: IvmNs.Reference[],
  ) {}

  static async open(setup: SandboxSetup): Promise<Sandbox> {
    const ivm = loadIvm();
    const isolate = new ivm.Isolate({ memoryLimit: setup.memoryMb });
    let sandbox: Sandbox | null = null;
    const api = createApi({
      call: async (name, args, optargs) => setup.target.call(name, await setup.check(name, args, optargs), optargs),
    }) as unknown as Record<string, (...a: unknown[]) => Promise<RetValue>>;
    const extra: Record<string, (...a: unknown[]) => Promise<unknown>> = {
      savepoint: (n) => setup.target.g.savepoint(n as string),
      rollbackTo: (n) => setup.target.g.rollbackTo(n as string),
    };
    const hostCall = new ivm.Reference(async (method: string, args: unknown[]) => {
      if (sandbox) sandbox.calls++;
      try {
        if (isolate.isDisposed) throw new Error('the run has ended');
        const f = api[method] ?? extra[method];
        if (!f) throw new Error(`g.${method} is not a function`);
        return { ok: true, value: new ivm.ExternalCopy(toIsolate(await f(...args))).copyInto() };
      } catch (e) {
        const err = e as Error & { action?: string; errno?: string };
        const refused = err?.name === 'RecipePolicyError';
        return new ivm.ExternalCopy({
          ok: false,
          name: refused ? 'UsageError' : (err?.name ?? 'Error'),
          message: refused ? `sandbox: ${err.message}` : (err?.message ?? String(e)),
          action: err?.action,
          errno: err?.errno,
        }).copyInto();
      }
    });
    let logged = 0;
    const hostLog = new ivm.Reference((line: string) => {
      if (logged > LOG_LIMIT) return;
      logged += line.length;
      setup.log(logged > LOG_LIMIT ? '[recipe log limit reached; further lines dropped]' : line);
    });
    const refs = [hostCall, hostLog];
    try {
      const context = await isolate.createContext();
      const methodNames = [...Object.keys(apiMethods), ...Object.keys(extra)];
      await context.evalClosure(
        BOOTSTRAP,
        [hostCall, hostLog, new ivm.ExternalCopy(methodNames).copyInto(), new ivm.ExternalCopy({ ...setup.params }).copyInto()],
        { filename: 'guestsh:bootstrap' },
      );
      sandbox = new Sandbox(isolate, context, refs);
      return sandbox;
    } catch (e) {
      for (const r of refs) r.release();
      if (!isolate.isDisposed) isolate.dispose();
      throw e;
    }
  }

  get disposed(): boolean {
    return this.isolate.isDisposed;
  }

  /** Ends the isolate: running code stops, pending bridged calls answer "the run has ended". */
  dispose(): void {
    if (!this.isolate.isDisposed) this.isolate.dispose();
    for (const r of this.refs) r.release();
    this.refs.length = 0;
  }
}

/** A run's time limit and its stop signal: either disposes the isolate; the flags say which did. */
function armLimits(sandbox: Sandbox, opts: Pick<SandboxOptions, 'timeoutMs' | 'signal'>): { timedOut: () => boolean; deadline: number; disarm: () => void } {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    sandbox.dispose();
  }, opts.timeoutMs);
  timer.unref?.();
  const onAbort = (): void => sandbox.dispose();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    timedOut: () => timedOut,
    deadline: Date.now() + opts.timeoutMs,
    disarm: () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * A run's modules: the entry, the recipe's own imports (confined to its
 * directory) and the standard library, compiled as the isolate's linker asks
 * for them. Remembers the first import that failed, to report it at the
 * import statement rather than as a link error.
 */
class RecipeModules {
  /** Compiled modules by path (also what stack traces are mapped with). */
  readonly compiled = new Map<string, CompiledModule>();
  private readonly pathOf = new Map<IvmNs.Module, string>();
  private readonly instances = new Map<string, Promise<IvmNs.Module>>();
  importFailure: { message: string; location: SourceLocation | null } | null = null;

  constructor(
    private readonly sandbox: Sandbox,
    private readonly entry: CompiledModule,
    /** Real and as-given directory of the entry: recipes may import only from there. */
    private readonly recipeRoot: string,
    private readonly recipeRootRaw: string,
    private readonly timings: SandboxTimings,
  ) {
    this.compiled.set(entry.path, entry);
  }

  /** The recipe's own module files loaded so far (not the standard library's). */
  ownModules(): string[] {
    return [...this.compiled.keys()].filter((p) => isAbsolute(p) && !within(p, stdlibDir));
  }

  /** Compiles and links the entry behind a shim that hands its default export to RUN_ENTRY. */
  async link(): Promise<IvmNs.Module> {
    const { isolate, context } = this.sandbox;
    const root = await isolate.compileModule(this.entry.code, { filename: this.entry.path });
    this.pathOf.set(root, this.entry.path);
    this.instances.set(this.entry.path, Promise.resolve(root));
    const shim = await isolate.compileModule(
      `import * as recipe from ${JSON.stringify(this.entry.path)}; globalThis[Symbol.for('guestsh.entry')] = recipe.default;`,
      { filename: 'guestsh:entry' },
    );
    this.pathOf.set(shim, 'guestsh:entry');
    await shim.instantiate(context, async (spec, referrer) => {
      const from = this.pathOf.get(referrer) ?? this.entry.path;
      if (from === 'guestsh:entry' && spec === this.entry.path) return root;
      return this.resolve(spec, from);
    });
    return shim;
  }

  private instance(path: string, load: () => Promise<CompiledModule>): Promise<IvmNs.Module> {
    let p = this.instances.get(path);
    if (!p) {
      p = (async () => {
        const c0 = performance.now();
        const c = await load();
        this.timings.compileMs += performance.now() - c0;
        this.compiled.set(path, c);
        const m = await this.sandbox.isolate.compileModule(c.code, { filename: path });
        this.pathOf.set(m, path);
        return m;
      })();
      this.instances.set(path, p);
    }
    return p;
  }

  private async resolve(specifier: string, referrerPath: string): Promise<IvmNs.Module> {
    try {
      return await this.resolveInner(specifier, referrerPath);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.importFailure ??= { message, location: await importLocation(referrerPath, specifier) };
      throw e;
    }
  }

  private async resolveInner(specifier: string, referrerPath: string): Promise<IvmNs.Module> {
    if (specifier === 'guestsh' || specifier === 'guestsh/recipe') {
      return this.instance('guestsh:runtime', async () => ({ path: 'guestsh:runtime', code: GUESTSH_MODULE, mappings: null }));
    }
    const std = /^guestsh\/([a-z-]+)$/.exec(specifier);
    if (std) {
      if (!(STDLIB_MODULES as readonly string[]).includes(std[1]!)) {
        throw new Error(`'${specifier}' is not a guestsh standard-library module (there are: ${STDLIB_MODULES.map((m) => `guestsh/${m}`).join(', ')})`);
      }
      const path = await stdlibFile(std[1]!);
      return this.instance(path, () => loadCompiled(path));
    }
    if (specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/')) {
      const inStdlib = within(referrerPath, stdlibDir);
      const root = inStdlib ? stdlibDir : this.recipeRoot;
      const rawRoot = inStdlib ? stdlibDir : this.recipeRootRaw;
      const path = await localFile(resolve(dirname(referrerPath), specifier), root, rawRoot, specifier, referrerPath);
      return this.instance(path, () => loadCompiled(path));
    }
    const what = /^node:|^(fs|path|os|child_process|net|http|https|dgram|tls|dns|worker_threads|process|vm|module|crypto)(\/|$)/.test(specifier)
      ? 'node modules are not available in recipes'
      : 'packages are not available in recipes; only relative imports of .gfs.ts files beside the recipe and guestsh/… standard-library modules';
    throw new Error(`cannot import '${specifier}': ${what}`);
  }
}

type FailureFields = Partial<RecipeFailure> & Pick<RecipeFailure, 'kind' | 'name' | 'message'>;

/** What stopped a run whose isolate threw or went away: the time limit, the memory limit, the stop signal, or the recipe. */
function stoppedFailure(e: unknown, stop: { timedOut: boolean; aborted: boolean; disposed: boolean }, opts: SandboxOptions, modules: RecipeModules): FailureFields {
  const m = e instanceof Error ? e.message : String(e);
  if (stop.aborted) return { kind: 'error', name: 'RecipeAborted', message: 'the run was stopped' };
  if (stop.timedOut || /timed out/i.test(m)) {
    return { kind: 'timeout', name: 'RecipeTimeout', message: `the recipe ran longer than its time limit of ${fmtSeconds(opts.timeoutMs)} and was stopped` };
  }
  if (/memory limit/i.test(m) || stop.disposed) {
    return { kind: 'memory', name: 'RecipeMemoryLimit', message: `the recipe exceeded its memory limit of ${opts.memoryMb} MB and was stopped` };
  }
  return { kind: 'error', name: (e as Error)?.name ?? 'Error', message: m, ...mapStack((e as Error)?.stack ?? '', modules.compiled) };
}

/**
 * Runs one recipe: compile its entry, open a sandbox, link and evaluate its
 * modules, call its default export, and describe the outcome. The image
 * is the caller's business (commit or discard); this only reports.
 */
export async function runInSandbox(opts: SandboxOptions): Promise<SandboxResult> {
  const timings: SandboxTimings = { compileMs: 0, isolateMs: 0, instantiateMs: 0, runMs: 0 };
  let modules: RecipeModules | null = null;
  let sandbox: Sandbox | null = null;
  const failure = (f: FailureFields): SandboxResult => ({
    ok: false,
    failure: { location: null, recipeLocation: null, stack: '', ...f },
    timings,
    calls: sandbox?.calls ?? 0,
    modules: modules?.ownModules() ?? [],
  });

  // 1. The entry (other modules compile as the linker meets them).
  let t = performance.now();
  let entry: CompiledModule;
  try {
    entry = opts.entrySource !== undefined ? compileModule(opts.entry, opts.entrySource) : await loadCompiled(opts.entry);
  } catch (e) {
    return failure(compileFailure(e));
  }
  timings.compileMs += performance.now() - t;

  // 2. The isolate, its bridges and limits.
  t = performance.now();
  sandbox = await Sandbox.open({
    target: opts.target,
    check: (name, args, optargs) => checkCall(opts.policy, name, args, optargs),
    params: opts.params,
    memoryMb: opts.memoryMb,
    log: opts.log,
  });
  const limits = armLimits(sandbox, opts);
  modules = new RecipeModules(sandbox, entry, opts.policy.roots.readDir, dirname(opts.entry), timings);
  timings.isolateMs = performance.now() - t;
  const stopped = (e: unknown): SandboxResult =>
    failure(stoppedFailure(e, { timedOut: limits.timedOut(), aborted: Boolean(opts.signal?.aborted), disposed: sandbox!.disposed }, opts, modules!));
  try {
    // 3. Link and evaluate the modules (top-level code runs here, under the time limit).
    t = performance.now();
    try {
      const shim = await modules.link();
      timings.instantiateMs = performance.now() - t;
      t = performance.now();
      await shim.evaluate({ timeout: Math.max(1, limits.deadline - Date.now()) });
    } catch (e) {
      if (e instanceof RecipeCompileError) return failure(compileFailure(e));
      const imp = modules.importFailure;
      if (imp) return failure({ kind: 'compile', name: 'ImportError', message: imp.message, location: imp.location, recipeLocation: imp.location, stack: imp.message });
      const m = e instanceof Error ? e.message : String(e);
      if (limits.timedOut() || sandbox.disposed || /timed out|memory limit/i.test(m)) return stopped(e);
      return failure({ kind: 'error', name: (e as Error).name ?? 'Error', message: m, ...mapStack((e as Error).stack ?? '', modules.compiled) });
    }

    // 4. Call the default export.
    const r = (await sandbox.context.evalClosure(RUN_ENTRY, [], { result: { promise: true, copy: true }, filename: 'guestsh:run' })) as {
      ok: boolean;
      value?: unknown;
      name?: string;
      message?: string;
      stack?: string;
      errno?: string;
    };
    timings.runMs = performance.now() - t;
    if (r.ok) return { ok: true, value: r.value, timings, calls: sandbox.calls, modules: modules.ownModules() };
    const name = r.name ?? 'Error';
    return failure({ kind: 'error', name, message: hint(name, r.message ?? ''), errno: r.errno, ...mapStack(r.stack ?? '', modules.compiled) });
  } catch (e) {
    timings.runMs ||= performance.now() - t;
    return stopped(e);
  } finally {
    limits.disarm();
    sandbox.dispose();
  }
}

function fmtSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

// Sandbox-specific explanations for the ReferenceErrors a recipe meets when it reaches for the host.
function hint(name: string, message: string): string {
  if (message === 'Not supported') return 'dynamic import() is not available in recipes (use static imports of .gfs.ts files beside the recipe or guestsh/… modules)';
  const m = /^(\w+) is not defined$/.exec(message);
  if (name === 'ReferenceError' && m) {
    const host = ['require', 'process', 'Buffer', 'setTimeout', 'setInterval', 'setImmediate', 'fetch', 'module', '__dirname', '__filename', 'global', 'XMLHttpRequest', 'WebSocket'];
    if (host.includes(m[1]!)) return `${message} (recipes run in a sandbox: they get only g, params and log; no host APIs)`;
  }
  return message;
}

function within(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

async function stdlibFile(name: string): Promise<string> {
  for (const ext of ['.ts', '.js']) {
    const p = resolve(stdlibDir, name + ext);
    if (await stat(p).then((s) => s.isFile(), () => false)) return p;
  }
  throw new Error(`guestsh/${name}: the standard library is missing from ${stdlibDir}`);
}

const SOURCE_EXTS = ['.ts', '.mts', '.js', '.mjs'];

async function localFile(abs: string, realRoot: string, rawRoot: string, spec: string, from: string): Promise<string> {
  const { realpath } = await import('node:fs/promises');
  const candidates = [abs];
  if (!SOURCE_EXTS.includes(extname(abs))) candidates.push(`${abs}.ts`, `${abs}.gfs.ts`);
  if (abs.endsWith('.js')) candidates.push(abs.replace(/\.js$/, '.ts'));
  for (const c of candidates) {
    const real = await realpath(c).catch(() => null);
    if (!real) continue;
    if (!within(real, realRoot) && !within(real, rawRoot)) {
      throw new Error(`cannot import '${spec}' from ${from}: recipes may import only files inside their own directory (${realRoot})`);
    }
    if (!SOURCE_EXTS.includes(extname(real))) throw new Error(`cannot import '${spec}': only .ts and .js modules can be imported`);
    if (!(await stat(real)).isFile()) continue;
    return real;
  }
  throw new Error(`cannot import '${spec}' from ${from}: no such file`);
}

/** Where a module imports `specifier` (the line of the first quoted occurrence), for import errors. */
async function importLocation(file: string, specifier: string): Promise<SourceLocation | null> {
  if (!file.startsWith('/')) return null;
  const text = await readFile(file, 'utf8').catch(() => '');
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    for (const q of ["'", '"', '`']) {
      const col = lines[i]!.indexOf(`${q}${specifier}${q}`);
      if (col >= 0 && /\b(import|from|export)\b/.test(lines[i]!)) return { file, line: i + 1, column: col + 1 };
    }
  }
  return null;
}

function compileFailure(e: unknown): Pick<RecipeFailure, 'kind' | 'name' | 'message' | 'location' | 'recipeLocation' | 'stack'> {
  if (e instanceof RecipeCompileError) {
    const loc = e.line !== undefined ? { file: e.file, line: e.line, column: e.column ?? 1 } : null;
    return { kind: 'compile', name: 'SyntaxError', message: e.message, location: loc, recipeLocation: loc, stack: e.message };
  }
  const m = e instanceof Error ? e.message : String(e);
  return { kind: 'compile', name: 'Error', message: m, location: null, recipeLocation: null, stack: m };
}

/** Maps every "path:line:col" of a compiled module in a stack back to its TypeScript source. */
export function mapStack(stack: string, modules: Map<string, CompiledModule>): Pick<RecipeFailure, 'stack' | 'location' | 'recipeLocation'> {
  let location: SourceLocation | null = null;
  let recipeLocation: SourceLocation | null = null;
  const lines = stack.split('\n').map((line) =>
    line.replace(/(\/[^\s():]+|guestsh:[a-z]+):(\d+):(\d+)/g, (whole, file: string, l: string, c: string) => {
      const mod = modules.get(file);
      if (!mod) return whole;
      const pos = originalPosition(mod, Number(l), Number(c)) ?? { line: Number(l), column: Number(c) };
      const loc = { file, line: pos.line, column: pos.column };
      if (/^\s+at /.test(line)) {
        location ??= loc;
        if (!within(file, stdlibDir)) recipeLocation ??= loc;
      }
      return `${file}:${pos.line}:${pos.column}`;
    }),
  );
  // V8 puts the throw site of a SyntaxError or a module-link error on the first line.
  return { stack: lines.join('\n'), location, recipeLocation };
}
