// TypeScript at the prompt: a line is compiled with @swc/core (types
// stripped, nothing checked) and run against the live session, with top-level
// await and bindings that persist from one line to the next.
//
// Interim sandbox: a node:vm context holding `g` (the typed API), `session`,
// `console` and a few globals. node:vm is NOT a security boundary; code typed
// at the prompt has the user's own authority anyway. Recipes (*.gfs.ts) get
// the isolated-vm sandbox when the recipes issue lands, and the prompt will
// move to it then.
//
// How bindings persist: each line runs as the body of an async function (for
// await). Top-level declarations (const/let/var, function, class) are
// rewritten into assignments to properties of the context's global object,
// so the next line sees them. A consequence: `const` bindings can be
// reassigned by later lines, and redeclaring a name is allowed.

import { createContext, runInContext, type Context } from 'node:vm';
import { inspect } from 'node:util';
import { createRequire } from 'node:module';
import { createApi } from '../spec/api.js';
import type { ArgValue, OptArgs, RetValue } from '../spec/values.js';
import type { Session } from '../runtime/session/session.js';

type Swc = typeof import('@swc/core');
let swc: Swc | null = null;
function loadSwc(): Swc {
  swc ??= createRequire(import.meta.url)('@swc/core') as Swc;
  return swc;
}

const TS_START = /^(await|const|let|var|for|while|if|function|async|class|try|do|switch|return|throw|type|interface|enum|import\s*\()\b|^g\.|^\{/;

/**
 * Is this line TypeScript rather than a guestfish command? `>` forces it; a
 * line starting with a statement keyword or `g.` is; otherwise a line whose
 * first word is not a command but an identifier followed by `.`, `(`, `[`,
 * `=` or nothing (e.g. `xs.length`, `x = 2`, `x`) is too.
 */
export function isTypeScriptLine(line: string, isCommand: (name: string) => boolean = () => false): boolean {
  const t = line.trimStart();
  if (t.startsWith('>') || TS_START.test(t)) return true;
  // kebab-case words (list-devics) are commands, even unknown ones.
  if (/^[A-Za-z_$][\w$]*-[A-Za-z]/.test(t)) return false;
  const m = /^([A-Za-z_$][\w$]*)\s*([.([=+\-*/?!<>]|$)/.exec(t);
  if (!m || isCommand(m[1]!)) return false;
  // `name -x` is more likely a command typo than arithmetic.
  return !(m[2] === '-' && /^[A-Za-z_$][\w$]*\s+-/.test(t));
}

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
  const js = s
    .transformSync(ts, {
      jsc: { parser: { syntax: 'typescript', tsx: false }, target: 'es2022' },
      isModule: true,
      sourceMaps: false,
    })
    .code.replace(/^"use strict";\s*/, '');
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

/** A persistent evaluation context bound to the shell's current session. */
export class TsEvaluator {
  readonly context: Context;

  constructor(getSession: () => Session) {
    const caller = {
      call: (name: string, args: readonly ArgValue[], optargs?: OptArgs): Promise<RetValue> => getSession().call(name, args, optargs ?? {}),
    };
    const sandbox: Record<string, unknown> = {
      g: createApi(caller),
      console,
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      Buffer,
      TextEncoder,
      TextDecoder,
      URL,
      structuredClone,
    };
    Object.defineProperty(sandbox, 'session', { get: getSession, enumerable: true });
    this.context = createContext(sandbox, { name: 'guestsh prompt' });
  }

  /** Evaluates one line; resolves to its value (the last expression), undefined otherwise. */
  async evaluate(source: string): Promise<unknown> {
    const { body, names } = compileLine(source);
    const global = runInContext('globalThis', this.context) as Record<string, unknown>;
    for (const n of names) if (!(n in global)) global[n] = undefined;
    const fn = runInContext(`(async () => {\n${body}\n})`, this.context, { filename: 'prompt.ts' }) as () => Promise<unknown>;
    return await fn();
  }

  static show(v: unknown): string {
    return inspect(v, { colors: Boolean(process.stdout.isTTY), depth: 4, maxArrayLength: 200 });
  }
}
