// The sandbox TypeScript runs in, recipes and the shell's prompt alike: an
// isolated-vm isolate holding a `g` whose every method is a bridge to the
// host session. Nothing else of the host is reachable: no require, process,
// timers, network or file system; every call goes through the caller's check
// first (recipes: the PathPolicy and the refused actions; the prompt: host
// paths under its directory), which also does the host side of its files.
// What crosses the bridge is bounded (limits.ts): a call's arguments are
// copied and measured inside the isolate before the host sees them, at most
// a few calls run at once, results and what a call buffers on the host are
// measured there, and the log has a budget. A recipe run gets one isolate
// with its modules and the standard library, compiled and linked before the
// appliance starts; the prompt keeps one for the shell session.

import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type IvmNs from 'isolated-vm';
import { createApi } from '../../spec/api.js';
import type { ArgValue, OptArgs, RetValue } from '../../spec/values.js';
import { apiMethods } from '../../spec/api.generated.js';
import { compileModule, type CompiledModule, originalPosition, RecipeCompileError } from './compile.js';
import { callDataLimit, formatBytes, RECIPE_LIMITS } from './limits.js';
import type { CallIo, CallTarget, PathPolicy } from './policy.js';

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

// Runs inside the isolate before any recipe module; returns the function
// that runs the recipe's default export. $0: the call bridge, $1: admission
// (blocks the isolate while the calls in flight are at the limit), $2: the
// log, $3: limit reports, $4: method names, $5: params, $6: the limits.
const BOOTSTRAP = `
'use strict';
const callRef = $0, admitRef = $1, logRef = $2, limitRef = $3, methods = $4, params = Object.freeze($5), limits = $6;
// Taken before any recipe code runs, which may replace what prototypes and
// globals hold: the copies and counts below must see values exactly as they
// will cross to the host.
const { isArray } = Array;
const { keys, freeze, defineProperty, getPrototypeOf, getOwnPropertyDescriptor } = Object;
const U8 = Uint8Array;
const uncurry = (f) => Function.prototype.call.bind(f);
const typedProto = getPrototypeOf(U8.prototype);
const byteLength = uncurry(getOwnPropertyDescriptor(typedProto, 'byteLength').get);
const typedTag = uncurry(getOwnPropertyDescriptor(typedProto, Symbol.toStringTag).get);
const slice = uncurry(String.prototype.slice);
const stringify = JSON.stringify;
const ENTRY = Symbol.for('guestsh.entry');
// isolated-vm reads its options through the prototype chain; null prototypes keep a recipe's Object.prototype out of them.
const COPY_ARGS = freeze({ __proto__: null, arguments: freeze({ __proto__: null, copy: true }) });
const CALL = freeze({ __proto__: null, arguments: COPY_ARGS.arguments, result: freeze({ __proto__: null, promise: true, copy: true }) });
const NONE = freeze({ __proto__: null });
const field = (value) => ({ __proto__: null, value, enumerable: true, writable: true, configurable: true });
class GuestfsError extends Error { constructor(m, action, errno) { super(m); this.name = 'GuestfsError'; this.action = action; this.errno = errno; } }
class UsageError extends Error { constructor(m) { super(m); this.name = 'UsageError'; } }
class RecipeError extends Error { constructor(m) { super(m); this.name = 'RecipeError'; } }
const classes = { GuestfsError, UsageError };
function overLimit(message) {
  limitRef.applySync(undefined, [message], COPY_ARGS);
  return new RecipeError('sandbox: ' + message);
}
function fmt(v) {
  if (typeof v === 'string') return v;
  if (v instanceof Error) return v.stack || String(v);
  let s;
  try { s = stringify(v, (k, x) => typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? '<' + x.length + ' bytes>' : x); } catch {}
  return typeof s === 'string' ? s : String(v);
}
let logged = 0;
const log = (...a) => {
  let line = '';
  for (let i = 0; i < a.length; i++) line += (i ? ' ' : '') + fmt(a[i]);
  logged += line.length;
  if (limits.logChars !== null && logged > limits.logChars) throw overLimit('the recipe logged more than ' + limits.logText + ' of text, the most one run may log');
  logRef.applySync(undefined, [line], COPY_ARGS);
};
// A fresh copy of a call's arguments holding only data properties, and its size:
// what is measured is what crosses (a getter or proxy cannot answer twice).
function copyArg(v, st, depth) {
  switch (typeof v) {
    case 'string': st.n += v.length; return v;
    case 'number': case 'boolean': case 'bigint': case 'undefined': st.n += 8; return v;
    case 'object': if (v === null) return v; break;
    default: throw new TypeError('g.' + st.method + ': a ' + typeof v + ' cannot be passed to the host');
  }
  if (depth > 3) throw new TypeError('g.' + st.method + ': its arguments nest too deeply');
  const tag = typedTag(v);
  if (tag !== undefined) {
    if (tag !== 'Uint8Array') throw new TypeError('g.' + st.method + ': buffers are passed as Uint8Array, not ' + tag);
    st.n += byteLength(v);
    check(st);
    return new U8(v);
  }
  if (isArray(v)) {
    const out = [];
    for (let i = 0, n = v.length; i < n; i++) { st.n += 8; defineProperty(out, i, field(copyArg(v[i], st, depth + 1))); check(st); }
    return out;
  }
  const out = { __proto__: null };
  const ks = keys(v);
  for (let i = 0; i < ks.length; i++) { st.n += 8 + ks[i].length; defineProperty(out, ks[i], field(copyArg(v[ks[i]], st, depth + 1))); check(st); }
  return out;
}
function check(st) {
  if (st.n > limits.callChars) throw overLimit('g.' + st.method + ': its arguments take more than ' + limits.callText + ', the most one call may pass with ' + limits.memoryText);
}
async function bridge(method, args) {
  const st = { __proto__: null, n: 0, method };
  const copied = copyArg(args, st, 0);
  admitRef.applySyncPromise(undefined, [], NONE);
  const r = await callRef.apply(undefined, [method, copied], CALL);
  if (r.ok) return r.value;
  const C = classes[r.name];
  let e;
  if (r.name === 'GuestfsError') e = new GuestfsError(r.message, r.action, r.errno);
  else if (C) e = new C(r.message);
  else { e = new Error(r.message); e.name = r.name; }
  throw e;
}
const g = {};
for (const m of methods) defineProperty(g, m, { __proto__: null, value: (...args) => bridge(m, args), enumerable: true });
freeze(g);
const ctx = freeze({ g, params, log });
const host = freeze({ GuestfsError, UsageError, RecipeError, ctx });
defineProperty(globalThis, Symbol.for('guestsh.host'), { __proto__: null, value: host });
globalThis.console = freeze({ log, info: log, warn: log, error: log, debug: log });
const cut = (s) => typeof s !== 'string' ? '' : s.length > limits.errorChars ? slice(s, 0, limits.errorChars) + ' [cut]' : s;
// Handed back to the host as a reference: recipe code cannot put another in its place.
return async () => {
  const f = globalThis[ENTRY];
  if (typeof f !== 'function') return { ok: false, name: 'RecipeError', message: 'the recipe has no default export function (write: export default async ({ g, params, log }) => { ... })', stack: '' };
  let value;
  try {
    value = await f(ctx);
  } catch (e) {
    const isObj = typeof e === 'object' && e !== null;
    return { ok: false, name: cut(isObj && typeof e.name === 'string' ? e.name : 'Error'), message: cut(isObj && 'message' in e ? String(e.message) : String(e)),
             stack: cut(isObj && typeof e.stack === 'string' ? e.stack : ''), errno: isObj && typeof e.errno === 'string' ? cut(e.errno) : undefined };
  }
  let json;
  try { json = value === undefined ? undefined : stringify(value, (k, x) => typeof x === 'bigint' ? x.toString() : x); } catch {}
  if (typeof json !== 'string') return { ok: true };
  if (json.length > limits.callChars) { overLimit('the recipe returned a value of more than ' + limits.callText + ', the most a run may return with ' + limits.memoryText); return { ok: true }; }
  return { ok: true, json };
};
`;

/** A host value made safe to copy into the isolate (Buffers can share a pool with unrelated host data). */
function toIsolate(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(toIsolate);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toIsolate(x)]));
  return v;
}

/** About how much memory a host value takes (characters of strings, bytes of buffers). */
function dataSize(v: unknown): number {
  if (typeof v === 'string') return v.length;
  if (v instanceof Uint8Array) return v.byteLength;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + dataSize(x), 0);
  if (v && typeof v === 'object') return Object.entries(v).reduce((n: number, [k, x]) => n + k.length + dataSize(x), 0);
  return 8;
}

/** A host-side limit of limits.ts was exceeded. */
export class RecipeLimitError extends Error {
  override name = 'RecipeLimitError';
}

/** What an isolate's `g` talks to, and what it is allowed to ask. */
export interface SandboxSetup {
  /** Runs one call of the isolate's `g`: checked, its host files opened confined (PathPolicy.call, callFromPrompt). */
  call: (name: string, args: readonly ArgValue[], optargs: OptArgs | undefined, io: CallIo) => Promise<RetValue>;
  savepoints: CallTarget['g'];
  params: Record<string, string>;
  memoryMb: number;
  log: (line: string) => void;
  /** Characters the isolate may log in all; unbounded when absent (the prompt prints as it goes). */
  logChars?: number | undefined;
  /** A limit was exceeded (the call or log line that exceeded it fails too). Recipe runs stop. */
  onLimit?: ((message: string) => void) | undefined;
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
  /** Slots taken by calls admitted and not yet finished (RECIPE_LIMITS.callsInFlight at most). */
  private admitted = 0;
  private readonly waiting: (() => void)[] = [];
  /** Host calls not yet finished: after a stop they may still be ending (a cancelled transfer, a call the closing session fails). */
  private readonly running = new Set<Promise<unknown>>();
  /** Aborts when the isolate goes: host reads, writes and transfers of calls still running stop. */
  private readonly ended = new AbortController();

  private constructor(
    readonly isolate: IvmNs.Isolate,
    readonly context: IvmNs.Context,
    private readonly refs: IvmNs.Reference[],
    /** Runs the recipe's default export (see the end of BOOTSTRAP). */
    readonly runEntry: IvmNs.Reference,
  ) {}

  static async open(setup: SandboxSetup): Promise<Sandbox> {
    const ivm = loadIvm();
    const isolate = new ivm.Isolate({ memoryLimit: setup.memoryMb });
    const callLimit = callDataLimit(setup.memoryMb);
    const limited = (message: string): RecipeLimitError => {
      setup.onLimit?.(message);
      return new RecipeLimitError(message);
    };
    let sandbox: Sandbox | null = null;
    const api = createApi({
      call: (name, args, optargs) => {
        let buffered = 0;
        const io: CallIo = {
          signal: sandbox!.ended.signal,
          log: setup.log,
          countBuffered: (n) => {
            buffered += n;
            if (buffered > callLimit) throw limited(`${name}: it would hold more than ${formatBytes(callLimit)} on the host, the most one call may with --memory ${setup.memoryMb} (download large files to the output directory instead)`);
          },
        };
        return setup.call(name, args, optargs, io);
      },
    }) as unknown as Record<string, (...a: unknown[]) => Promise<RetValue>>;
    const extra: Record<string, (...a: unknown[]) => Promise<unknown>> = {
      savepoint: (n) => setup.savepoints.savepoint(n as string),
      rollbackTo: (n) => setup.savepoints.rollbackTo(n as string),
    };
    const hostCall = new ivm.Reference((method: string, args: unknown[]) => sandbox!.track(bridged(method, args)));
    const bridged = async (method: string, args: unknown[]): Promise<unknown> => {
      sandbox!.calls++;
      try {
        if (isolate.isDisposed) throw new Error('the run has ended');
        const f = Object.hasOwn(api, method) ? api[method] : Object.hasOwn(extra, method) ? extra[method] : undefined;
        if (!f) throw new Error(`g.${method} is not a function`);
        const value = await f(...args);
        const size = dataSize(value);
        if (size > callLimit) throw limited(`g.${method}: its result takes ${formatBytes(size)}, over the ${formatBytes(callLimit)} one call may return with --memory ${setup.memoryMb}`);
        return { ok: true, value: new ivm.ExternalCopy(toIsolate(value)).copyInto() };
      } catch (e) {
        const err = e as Error & { action?: string; errno?: string };
        const refused = err?.name === 'RecipePolicyError' || err?.name === 'RecipeLimitError';
        return new ivm.ExternalCopy({
          ok: false,
          name: refused ? 'UsageError' : (err?.name ?? 'Error'),
          message: refused ? `sandbox: ${err.message}` : (err?.message ?? String(e)),
          action: err?.action,
          errno: err?.errno,
        }).copyInto();
      } finally {
        sandbox!.release();
      }
    };
    const admit = new ivm.Reference(() => sandbox!.admit());
    const hostLog = new ivm.Reference((line: string) => setup.log(line));
    const hostLimit = new ivm.Reference((message: string) => void setup.onLimit?.(message));
    const refs = [hostCall, admit, hostLog, hostLimit];
    try {
      const context = await isolate.createContext();
      const methodNames = [...Object.keys(apiMethods), ...Object.keys(extra)];
      const limits = {
        callChars: callLimit,
        callText: formatBytes(callLimit),
        memoryText: `--memory ${setup.memoryMb}`,
        logChars: setup.logChars ?? null,
        logText: formatBytes(setup.logChars ?? 0),
        errorChars: RECIPE_LIMITS.errorChars,
      };
      const runEntry = (await context.evalClosure(
        BOOTSTRAP,
        [...refs, ...[methodNames, { ...setup.params }, limits].map((v) => new ivm.ExternalCopy(v).copyInto())],
        { filename: 'guestsh:bootstrap', result: { reference: true } },
      )) as IvmNs.Reference;
      refs.push(runEntry);
      sandbox = new Sandbox(isolate, context, refs, runEntry);
      return sandbox;
    } catch (e) {
      for (const r of refs) r.release();
      if (!isolate.isDisposed) isolate.dispose();
      throw e;
    }
  }

  /** Resolves when one more call may run; the isolate waits for it (applySyncPromise). */
  private admit(): Promise<void> {
    if (this.admitted < RECIPE_LIMITS.callsInFlight) {
      this.admitted++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A call has finished: its slot goes to the next one waiting. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.admitted--;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
    return p;
  }

  /** Resolves once every host call this isolate started has finished. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  get disposed(): boolean {
    return this.isolate.isDisposed;
  }

  /** Ends the isolate: running code stops, calls still running are told to stop (the signal), and answer "the run has ended". */
  dispose(): void {
    this.ended.abort(new Error('the sandbox was stopped'));
    // Calls waiting for a slot belong to the isolate: they end with it.
    this.waiting.length = 0;
    if (!this.isolate.isDisposed) this.isolate.dispose();
    for (const r of this.refs) r.release();
    this.refs.length = 0;
  }
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

/** A recipe whose modules are compiled and linked in their isolate: ready to run, or why it cannot. */
export type PreparedRecipe =
  | { ok: false; result: SandboxResult }
  | {
      ok: true;
      /** Evaluates the modules and calls the default export, within the time limit; the isolate goes when it ends. */
      run: () => Promise<SandboxResult>;
      /** The recipe's own module files, entry first (not the standard library's). */
      modules: string[];
      /** Gives the isolate up without running (the appliance did not start). */
      dispose: () => void;
      /** Resolves once the host calls the run started have ended (a stopped run's may outlive it until the session closes). */
      settled: () => Promise<void>;
      /** The compiled code of every module linked, the recipe's own and the standard library's: what the run will execute. */
      linkedCode: string[];
    };

/**
 * Compiles a recipe's entry, opens its sandbox, and links its modules (each
 * compiled as the linker meets it), without running any of its code: syntax
 * and import errors are known here, before an appliance is started for it.
 */
export async function prepareRecipe(opts: SandboxOptions): Promise<PreparedRecipe> {
  const timings: SandboxTimings = { compileMs: 0, isolateMs: 0, instantiateMs: 0, runMs: 0 };
  const failed = (f: FailureFields, modules?: RecipeModules): PreparedRecipe => ({
    ok: false,
    result: { ok: false, failure: { location: null, recipeLocation: null, stack: '', ...f }, timings, calls: 0, modules: modules?.ownModules() ?? [] },
  });

  // 1. The entry (other modules compile as the linker meets them).
  let t = performance.now();
  let entry: CompiledModule;
  try {
    entry = opts.entrySource !== undefined ? compileModule(opts.entry, opts.entrySource) : await loadCompiled(opts.entry);
  } catch (e) {
    return failed(compileFailure(e));
  }
  timings.compileMs += performance.now() - t;

  // 2. The isolate and its bridges. A limit exceeded on the host side stops the run.
  t = performance.now();
  const stop = new RunStop();
  const sandbox = await Sandbox.open({
    call: (name, args, optargs, io) => opts.policy.call(opts.target, io, name, args, optargs),
    savepoints: opts.target.g,
    params: opts.params,
    memoryMb: opts.memoryMb,
    log: opts.log,
    logChars: RECIPE_LIMITS.logChars,
    onLimit: (message) => stop.set({ kind: 'memory', name: 'RecipeMemoryLimit', message: `${message}; the recipe was stopped` }),
  });
  const modules = new RecipeModules(sandbox, entry, opts.policy.roots.readDir, dirname(opts.entry), timings);
  timings.isolateMs = performance.now() - t;

  // 3. Link (nothing of the recipe runs yet).
  t = performance.now();
  let shim: IvmNs.Module;
  try {
    shim = await modules.link();
  } catch (e) {
    sandbox.dispose();
    if (e instanceof RecipeCompileError) return failed(compileFailure(e), modules);
    const imp = modules.importFailure;
    if (imp) return failed({ kind: 'compile', name: 'ImportError', message: imp.message, location: imp.location, recipeLocation: imp.location, stack: imp.message }, modules);
    return failed({ kind: 'compile', name: (e as Error)?.name ?? 'Error', message: e instanceof Error ? e.message : String(e), ...mapStack((e as Error)?.stack ?? '', modules.compiled) }, modules);
  }
  timings.instantiateMs = performance.now() - t;
  return {
    ok: true,
    modules: modules.ownModules(),
    run: () => runLinked(opts, sandbox, modules, shim, stop, timings),
    dispose: () => sandbox.dispose(),
    settled: () => sandbox.settled(),
    linkedCode: [...modules.compiled.values()].map((m) => m.code),
  };
}

/** Why a run was stopped from outside its code (time limit, a host-side limit, the caller's signal), once known. */
class RunStop {
  reason: FailureFields | null = null;
  private resolve!: () => void;
  readonly stopped = new Promise<void>((r) => (this.resolve = r));

  set(reason: FailureFields): void {
    if (this.reason) return;
    this.reason = reason;
    this.resolve();
  }
}

async function runLinked(opts: SandboxOptions, sandbox: Sandbox, modules: RecipeModules, shim: IvmNs.Module, stop: RunStop, timings: SandboxTimings): Promise<SandboxResult> {
  const result = (f: FailureFields): SandboxResult => ({
    ok: false,
    failure: { location: null, recipeLocation: null, stack: '', ...f },
    timings,
    calls: sandbox.calls,
    modules: modules.ownModules(),
  });
  const deadline = Date.now() + opts.timeoutMs;
  const timer = setTimeout(
    () => stop.set({ kind: 'timeout', name: 'RecipeTimeout', message: `the recipe ran longer than its time limit of ${fmtSeconds(opts.timeoutMs)} and was stopped` }),
    opts.timeoutMs,
  );
  const onAbort = (): void => stop.set({ kind: 'error', name: 'RecipeAborted', message: 'the run was stopped' });
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const t = performance.now();
  // What the isolate threw or answered, or how it went away.
  const failed = (e: unknown): FailureFields => {
    const m = e instanceof Error ? e.message : String(e);
    if (/timed out/i.test(m)) return { kind: 'timeout', name: 'RecipeTimeout', message: `the recipe ran longer than its time limit of ${fmtSeconds(opts.timeoutMs)} and was stopped` };
    if (/memory limit/i.test(m) || sandbox.disposed) return { kind: 'memory', name: 'RecipeMemoryLimit', message: `the recipe exceeded its memory limit of ${opts.memoryMb} MB and was stopped` };
    return { kind: 'error', name: (e as Error)?.name ?? 'Error', message: m, ...mapStack((e as Error)?.stack ?? '', modules.compiled) };
  };
  const work = (async (): Promise<SandboxResult> => {
    try {
      // Top-level code runs here; the isolate's own timeout covers a loop that never yields.
      await shim.evaluate({ timeout: Math.max(1, deadline - Date.now()) });
    } catch (e) {
      return result(failed(e));
    }
    let r: { ok: boolean; json?: string; name?: string; message?: string; stack?: string; errno?: string };
    try {
      r = (await sandbox.runEntry.apply(undefined, [], { result: { promise: true, copy: true } })) as typeof r;
    } catch (e) {
      return result(failed(e));
    }
    if (r.ok) return { ok: true, value: r.json === undefined ? undefined : JSON.parse(r.json), timings, calls: sandbox.calls, modules: modules.ownModules() };
    const name = r.name ?? 'Error';
    return result({ kind: 'error', name, message: hint(name, r.message ?? ''), errno: r.errno, ...mapStack(r.stack ?? '', modules.compiled) });
  })();
  try {
    // The run ends at its limit even if a host call it made has not: the
    // calls still running are told to stop when the isolate goes (below).
    const done = await Promise.race([work, stop.stopped.then(() => null)]);
    timings.runMs = performance.now() - t;
    // A limit exceeded counts even if the recipe caught the failing call and returned.
    if (stop.reason) return result(stop.reason);
    return done!;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    sandbox.dispose();
    work.catch(() => {});
  }
}

/**
 * Runs one recipe: prepare it (compile, sandbox, link), evaluate its modules
 * and call its default export, and describe the outcome. The image is the
 * caller's business (commit or discard); this only reports.
 */
export async function runInSandbox(opts: SandboxOptions): Promise<SandboxResult> {
  const prepared = await prepareRecipe(opts);
  return prepared.ok ? prepared.run() : prepared.result;
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

export async function stdlibFile(name: string): Promise<string> {
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
