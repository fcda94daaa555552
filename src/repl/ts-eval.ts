// TypeScript at the prompt: a line is compiled with @swc/core (types
// stripped, nothing checked) and run in the recipes' sandbox (isolated-vm,
// see runtime/recipe/sandbox.ts) against the live session, with top-level
// await and bindings that persist from one line to the next. What code
// typed there can reach is listed in README.md.
//
// How bindings persist: each line runs as the body of an async function (for
// await). Top-level declarations (const/let/var, function, class) are
// rewritten into assignments to properties of the isolate's global object,
// so the next line sees them. A consequence: `const` bindings can be
// reassigned by later lines, and redeclaring a name is allowed.

import { inspect } from 'node:util';
import { runInNewContext } from 'node:vm';
import { createRequire } from 'node:module';
import type { ArgValue, OptArgs, RetValue } from '../spec/values.js';
import type { CallTransfer } from '../runtime/session/session.js';
import { Sandbox } from '../runtime/recipe/sandbox.js';
import { callFromPrompt } from '../runtime/recipe/policy.js';
import { compileError } from '../runtime/recipe/compile.js';

type Swc = typeof import('@swc/core');
let swc: Swc | null = null;
function loadSwc(): Swc {
  swc ??= createRequire(import.meta.url)('@swc/core') as Swc;
  return swc;
}

const TS_START = /^(await|const|let|var|for|while|if|function|async|class|try|do|switch|return|throw|type|interface|enum|import\s*\()\b|^g\.|^\{/;

/**
 * Is this line TypeScript rather than a guestfish command? `>` forces it; a
 * line starting with a statement keyword or `g.` is. Otherwise the command
 * table decides first: a command's name is a command. A word that is not one
 * is TypeScript when TypeScript's shapes follow it (`xs.length`, `f(1)`,
 * `a[0]`, `x = 2`), or when it names a binding in scope (`n * 2`, `x`); any
 * other word is a mistyped command (`mkdri /foo`, `clear`), answered with
 * "did you mean", never run as code.
 */
export function isTypeScriptLine(line: string, isCommand: (name: string) => boolean = () => false, inScope: (name: string) => boolean = () => false): boolean {
  const t = line.trimStart();
  if (t.startsWith('>') || TS_START.test(t)) return true;
  // kebab-case words (list-devics) are commands, even unknown ones.
  if (/^[A-Za-z_$][\w$]*-[A-Za-z]/.test(t)) return false;
  const m = /^([A-Za-z_$][\w$]*)\s*([.([=+\-*/%?!<>&|]|$)/.exec(t);
  if (!m || isCommand(m[1]!)) return false;
  const next = m[2]!;
  if (next === '.' || next === '(' || next === '[') return true;
  if (next === '=' && t[m[0].length] !== '=') return true;
  // `name -x` is more likely a command typo than arithmetic.
  if (next === '-' && /^[A-Za-z_$][\w$]*\s+-/.test(t)) return false;
  return inScope(m[1]!);
}

// What a line can name before it has bound anything: ECMAScript's globals
// (a fresh context has exactly those) and the prompt's own.
const BUILTIN_GLOBALS: readonly string[] = [...(runInNewContext('Object.getOwnPropertyNames(globalThis)') as string[]), 'g', 'console'];

interface Span {
  start: number;
  end: number;
}
interface Node {
  type: string;
  span: Span;
  [k: string]: unknown;
}

function patternNames(p: Node | undefined, out: string[]): void {
  if (!p) return;
  switch (p.type) {
    case 'Identifier':
      out.push(p.value as string);
      break;
    case 'BindingIdentifier':
      out.push(p.value as string);
      break;
    case 'ObjectPattern':
      for (const prop of p.properties as Node[]) {
        if (prop.type === 'AssignmentPatternProperty') out.push((prop.key as Node).value as string);
        else if (prop.type === 'KeyValuePatternProperty') patternNames(prop.value as Node, out);
        else if (prop.type === 'RestElement') patternNames(prop.argument as Node, out);
      }
      break;
    case 'ArrayPattern':
      for (const el of p.elements as (Node | null)[]) if (el) patternNames(el, out);
      break;
    case 'RestElement':
      patternNames(p.argument as Node, out);
      break;
    case 'AssignmentPattern':
      patternNames(p.left as Node, out);
      break;
  }
}

/** Compiles one line (or block) into the body of an async function, plus the names it binds. */
export function compileLine(source: string): { body: string; names: string[] } {
  const s = loadSwc();
  const ts = source.trimStart().replace(/^>/, '');
  // 1. TypeScript → JavaScript (as a module: top-level await is legal there).
  let js: string;
  try {
    js = s
      .transformSync(ts, {
        filename: 'prompt.ts',
        jsc: { parser: { syntax: 'typescript', tsx: false }, target: 'es2022' },
        isModule: true,
        sourceMaps: false,
      })
      .code.replace(/^"use strict";\s*/, '');
  } catch (e) {
    const one = compileError('prompt.ts', e);
    const syntax = new SyntaxError(one.message.replace(/^prompt\.ts:\d+:?/, 'column '));
    throw syntax;
  }
  // 2. Find the top-level statements and rewrite declarations into assignments.
  const mod = s.parseSync(js, { syntax: 'ecmascript', target: 'es2022' }) as unknown as { span: Span; body: Node[] };
  const bytes = Buffer.from(js, 'utf8');
  // Spans are 1-based byte offsets from the start of this parse.
  const base = mod.span.start - firstTokenOffset(js);
  const text = (sp: Span): string => bytes.subarray(sp.start - base, sp.end - base).toString('utf8');
  const names: string[] = [];
  const parts: string[] = [];
  mod.body.forEach((st, i) => {
    const last = i === mod.body.length - 1;
    if (st.type === 'VariableDeclaration') {
      for (const d of st.declarations as Node[]) {
        const before = names.length;
        patternNames(d.id as Node, names);
        if (d.init) parts.push(`(${text((d.id as Node).span)} = ${text((d.init as Node).span)});`);
        else for (const n of names.slice(before)) parts.push(`${n} = undefined;`);
      }
    } else if (st.type === 'FunctionDeclaration' || st.type === 'ClassDeclaration') {
      const id = (st.identifier as Node).value as string;
      names.push(id);
      parts.push(`${id} = ${text(st.span)};`);
    } else if (last && st.type === 'ExpressionStatement') {
      parts.push(`return (${text((st.expression as Node).span)});`);
    } else {
      parts.push(text(st.span));
    }
  });
  return { body: parts.join('\n'), names };
}

function firstTokenOffset(js: string): number {
  // Leading whitespace and comments are outside the module's span.
  let i = 0;
  for (;;) {
    while (i < js.length && /\s/.test(js[i]!)) i++;
    if (js.startsWith('//', i)) {
      const nl = js.indexOf('\n', i);
      i = nl < 0 ? js.length : nl + 1;
    } else if (js.startsWith('/*', i)) {
      const e = js.indexOf('*/', i + 2);
      i = e < 0 ? js.length : e + 2;
    } else break;
  }
  return Buffer.byteLength(js.slice(0, i), 'utf8');
}

/** What the prompt's `g` calls: the shell (its calls are cancellable with Ctrl-C), and the session's savepoints when there is one. */
export interface PromptTarget {
  call(name: string, args: readonly ArgValue[], optargs?: OptArgs, transfer?: CallTransfer): Promise<RetValue>;
  g?: { savepoint(name: string): Promise<void>; rollbackTo(name: string): Promise<void> };
}

/** The prompt's isolate may hold what a person pulls out of a guest to look at. */
const PROMPT_MEMORY_MB = 1024;

// Runs once in a new prompt isolate, after the sandbox's bootstrap: `g` as a
// global, and the runner each line is handed to. A value that cannot be
// copied out (a function, an object holding one) is described instead.
const PROMPT_BOOTSTRAP = `
const host = globalThis[Symbol.for('guestsh.host')];
Object.defineProperty(globalThis, 'g', { value: host.ctx.g, enumerable: false });
const OPAQUE = '\\0guestsh:opaque';
function describe(v, seen) {
  if (typeof v === 'function') return { [OPAQUE]: /^class\\b/.test(Function.prototype.toString.call(v)) ? '[class ' + (v.name || '(anonymous)') + ']' : '[Function: ' + (v.name || '(anonymous)') + ']' };
  if (typeof v === 'symbol') return { [OPAQUE]: String(v) };
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof Date || v instanceof RegExp) return v;
  if (v instanceof Promise) return { [OPAQUE]: 'Promise { <pending> }' };
  if (seen.has(v)) return { [OPAQUE]: '[Circular]' };
  seen.add(v);
  if (Array.isArray(v)) return v.map((x) => describe(x, seen));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [describe(k, seen), describe(x, seen)]));
  if (v instanceof Set) return new Set([...v].map((x) => describe(x, seen)));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, describe(x, seen)]));
}
const prompt = { last: undefined, describe: () => describe(prompt.last, new Set()) };
prompt.run = async (line) => {
  try {
    prompt.last = await line();
    return { ok: true, value: prompt.last !== undefined };
  } catch (e) {
    const isObj = typeof e === 'object' && e !== null;
    return { ok: false, name: isObj && typeof e.name === 'string' ? e.name : 'Error', message: isObj && 'message' in e ? String(e.message) : String(e) };
  }
};
Object.defineProperty(globalThis, Symbol.for('guestsh.prompt'), { value: prompt });
`;

const OPAQUE = '\0guestsh:opaque';

/** A value the isolate could only describe: shown as its description, unquoted. */
class Described {
  constructor(readonly text: string) {}
  [inspect.custom](): string {
    return this.text;
  }
}

function undescribe(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof Date || v instanceof RegExp) return v;
  if (Array.isArray(v)) return v.map(undescribe);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [undescribe(k), undescribe(x)]));
  if (v instanceof Set) return new Set([...v].map(undescribe));
  const rec = v as Record<string, unknown>;
  if (typeof rec[OPAQUE] === 'string') return new Described(rec[OPAQUE]);
  return Object.fromEntries(Object.entries(rec).map(([k, x]) => [k, undescribe(x)]));
}

/** The prompt's TypeScript evaluator: one isolate for the shell session, bound to whatever session the shell has now. */
export class TsEvaluator {
  private sandbox: Promise<Sandbox> | null = null;
  /** The isolate's global names after the last line (its bindings persist as globals). */
  private scope = new Set(BUILTIN_GLOBALS);

  constructor(private readonly target: () => PromptTarget) {}

  private open(): Promise<Sandbox> {
    if (this.sandbox) return this.sandbox;
    const target = this.target;
    this.sandbox = Sandbox.open({
      call: (name, args, optargs, io) => callFromPrompt(target(), io, name, args, optargs),
      savepoints: {
        savepoint: (n) => savepoints(target()).savepoint(n),
        rollbackTo: (n) => savepoints(target()).rollbackTo(n),
      },
      params: {},
      memoryMb: PROMPT_MEMORY_MB,
      log: (line) => process.stdout.write(`${line}\n`),
    }).then(async (sb) => {
      await sb.context.eval(PROMPT_BOOTSTRAP, { filename: 'guestsh:prompt' });
      return sb;
    });
    // A failed start is retried on the next line.
    this.sandbox.catch(() => (this.sandbox = null));
    return this.sandbox;
  }

  /** Is `name` bound at the prompt (a builtin, or a name an earlier line bound)? */
  inScope(name: string): boolean {
    return this.scope.has(name);
  }

  /** Evaluates one line; resolves to its value (the last expression), undefined otherwise. */
  async evaluate(source: string): Promise<unknown> {
    try {
      return await this.evaluateLine(source);
    } finally {
      await this.refreshScope();
    }
  }

  private async refreshScope(): Promise<void> {
    const sb = await this.sandbox?.catch(() => null);
    if (!sb || sb.disposed) {
      this.scope = new Set(BUILTIN_GLOBALS);
      return;
    }
    const names = (await sb.context.eval('Object.getOwnPropertyNames(globalThis)', { copy: true }).catch(() => [])) as string[];
    this.scope = new Set([...BUILTIN_GLOBALS, ...names]);
  }

  private async evaluateLine(source: string): Promise<unknown> {
    const { body, names } = compileLine(source);
    let sb = await this.open();
    if (sb.disposed) {
      this.sandbox = null;
      sb = await this.open();
      process.stderr.write('guestsh: the TypeScript sandbox was restarted; earlier bindings are gone\n');
    }
    const code = `(() => {
  for (const n of ${JSON.stringify(names)}) if (!(n in globalThis)) globalThis[n] = undefined;
  return globalThis[Symbol.for('guestsh.prompt')].run(async () => {\n${body}\n});
})()`;
    const r = (await sb.context.eval(code, { promise: true, copy: true, filename: 'prompt.ts' })) as
      | { ok: true; value: boolean }
      | { ok: false; name: string; message: string };
    if (!r.ok) {
      const e = new Error(r.message);
      e.name = r.name;
      throw e;
    }
    if (!r.value) return undefined;
    try {
      return await sb.context.eval(`globalThis[Symbol.for('guestsh.prompt')].last`, { copy: true });
    } catch {
      return undescribe(await sb.context.eval(`globalThis[Symbol.for('guestsh.prompt')].describe()`, { copy: true }));
    }
  }

  /** Stops a line that is still running (Ctrl-C with no call to cancel): the isolate goes, and its bindings with it. */
  stop(): void {
    void this.sandbox?.then((sb) => sb.dispose());
  }

  static show(v: unknown): string {
    return inspect(v, { colors: Boolean(process.stdout.isTTY), depth: 4, maxArrayLength: 200 });
  }
}

function savepoints(t: PromptTarget): NonNullable<PromptTarget['g']> {
  if (!t.g) throw new Error('savepoints need a session');
  return t.g;
}
