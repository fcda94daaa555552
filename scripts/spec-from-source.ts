// Extracts the libguestfs API facts (actions, structs, procedure numbers,
// protocol constants) from a libguestfs source tree into
// src/spec/spec.json.
//
//   npx tsx scripts/spec-from-source.ts [SRCDIR] [--out FILE]
//
// Without SRCDIR the Debian source package is fetched with `apt-get source`
// into a temporary directory.
//
// The generator's action lists are OCaml values, so this reads them with a
// small OCaml reader: a tokenizer, a parser for the expression subset the
// data files use, and an evaluator for that subset. Only top-level bindings
// that are actually needed get parsed; anything outside the subset fails
// with file:line rather than being guessed at. Documentation fields are
// skipped unparsed so no prose can end up in the output.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  FIELD_TYPES, OPTARG_KINDS, RSTRING_KINDS, STRING_KINDS, VISIBILITIES,
  type ActionSpec, type ArgSpec, type OptArgSpec, type Protocol, type RetSpec,
  type Spec, type StructSpec,
} from '../src/spec/types.js';

// ---------------------------------------------------------------- errors

interface Loc { file: string; line: number }

class SpecError extends Error {}

function fail(loc: Loc, msg: string): never {
  throw new SpecError(`${loc.file}:${loc.line}: ${msg}`);
}

// ---------------------------------------------------------------- tokenizer

type TokKind = 'lid' | 'uid' | 'int' | 'str' | 'op' | 'punct';
interface Token { k: TokKind; s: string; line: number; col: number; file: string }

const OP_CHARS = '!$%&*+-./:<=>?@^|~#';
const PUNCT_CHARS = '()[]{};,`';

function tokenize(file: string, src: string): Token[] {
  const toks: Token[] = [];
  const n = src.length;
  let i = 0;
  let line = 1;
  let lineStart = 0;

  const loc = (): Loc => ({ file, line });
  // Matches a sticky regex at the current position and consumes the match;
  // used only for tokens that cannot contain newlines.
  const matchAt = (re: RegExp): RegExpExecArray | null => {
    re.lastIndex = i;
    const m = re.exec(src);
    if (m) i += m[0].length;
    return m;
  };
  const bump = (): string => {
    const c = src[i++]!;
    if (c === '\n') { line++; lineStart = i; }
    return c;
  };

  function lexString(start: Loc): string {
    // Escapes can denote single bytes, so the value is assembled as bytes
    // and decoded once at the end.
    const bytes: number[] = [];
    for (;;) {
      if (i >= n) fail(start, 'unterminated string literal');
      const c = bump();
      if (c === '"') break;
      if (c !== '\\') {
        const astral = c >= '\ud800' && c <= '\udbff';
        bytes.push(...Buffer.from(astral ? c + bump() : c, 'utf8'));
        continue;
      }
      const e = bump();
      const simple: Record<string, number> = { '\\': 92, '"': 34, "'": 39, n: 10, t: 9, b: 8, r: 13, ' ': 32 };
      if (e in simple) { bytes.push(simple[e]!); continue; }
      if (e === '\n') {
        while (src[i] === ' ' || src[i] === '\t') bump();
        continue;
      }
      i--;
      let m: RegExpExecArray | null;
      if ((m = matchAt(/[0-9]{3}/y))) { bytes.push(parseInt(m[0], 10)); continue; }
      if ((m = matchAt(/x([0-9a-fA-F]{2})/y))) { bytes.push(parseInt(m[1]!, 16)); continue; }
      if ((m = matchAt(/o([0-3][0-7]{2})/y))) { bytes.push(parseInt(m[1]!, 8)); continue; }
      fail(loc(), `unsupported escape sequence \\${e} in string literal`);
    }
    return Buffer.from(bytes).toString('utf8');
  }

  // {|...|} and {id|...|id}: no escapes, ends at the matching delimiter.
  function lexQuoted(start: Loc, id: string): string {
    const close = `|${id}}`;
    const end = src.indexOf(close, i);
    if (end < 0) fail(start, 'unterminated quoted string literal');
    const body = src.slice(i, end);
    while (i < end + close.length) bump();
    return body;
  }

  const quotedOpen = /\{([a-z_]*)\|/y;
  function skipComment(start: Loc): void {
    let depth = 1;
    while (depth > 0) {
      if (i >= n) fail(start, 'unterminated comment');
      if (src.startsWith('(*', i)) { i += 2; depth++; continue; }
      if (src.startsWith('*)', i)) { i += 2; depth--; continue; }
      // OCaml lexes string literals inside comments, so a "*)" inside one
      // does not end the comment.
      if (src[i] === '"') { bump(); lexString(loc()); continue; }
      const q = matchAt(quotedOpen);
      if (q) { lexQuoted(loc(), q[1]!); continue; }
      bump();
    }
  }

  while (i < n) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') { bump(); continue; }
    const start = loc();
    const col = i - lineStart;
    const push = (k: TokKind, s: string): void => { toks.push({ k, s, line: start.line, col, file }); };

    if (src.startsWith('(*', i)) { i += 2; skipComment(start); continue; }
    if (c === '"') { bump(); push('str', lexString(start)); continue; }
    const q = matchAt(quotedOpen);
    if (q) { push('str', lexQuoted(start, q[1]!)); continue; }

    let m: RegExpExecArray | null;
    if ((m = matchAt(/[A-Za-z_][A-Za-z0-9_']*/y))) {
      push(/^[A-Z]/.test(m[0]) ? 'uid' : 'lid', m[0]);
      continue;
    }
    if ((m = matchAt(/(?:0[xX][0-9a-fA-F][0-9a-fA-F_]*|[0-9][0-9_]*)[lLn]?/y))) {
      if (src[i] === '.' || src[i] === 'e' || src[i] === 'E') fail(start, 'float literals are not supported');
      push('int', m[0]);
      continue;
    }
    if (PUNCT_CHARS.includes(c)) { bump(); push('punct', c); continue; }
    if (OP_CHARS.includes(c)) {
      let j = i;
      while (j < n && OP_CHARS.includes(src[j]!)) j++;
      push('op', src.slice(i, j));
      i = j;
      continue;
    }
    fail(start, `unexpected character ${JSON.stringify(c)}`);
  }
  return toks;
}

// ---------------------------------------------------------------- values and syntax

type Value =
  | { t: 'int'; v: number; loc: Loc }
  | { t: 'str'; v: string; loc: Loc }
  | { t: 'bool'; v: boolean; loc: Loc }
  | { t: 'unit'; loc: Loc }
  | { t: 'tuple' | 'list'; items: Value[]; loc: Loc }
  | { t: 'ctor'; name: string; arg: Value | null; loc: Loc }
  | { t: 'record'; fields: Map<string, Value>; loc: Loc }
  | { t: 'fn'; call: (arg: Value, loc: Loc) => Value; loc: Loc };

type Pattern =
  | { p: 'var'; name: string }
  | { p: 'wild' }
  | { p: 'tuple'; items: Pattern[] };

type Expr =
  | { e: 'lit'; v: Value }
  | { e: 'var'; mod: string | null; name: string; loc: Loc }
  | { e: 'ctor'; name: string; arg: Expr | null; loc: Loc }
  | { e: 'tuple' | 'list'; items: Expr[]; loc: Loc }
  | { e: 'record'; base: Expr | null; fields: { name: string; value: Expr; loc: Loc }[]; loc: Loc }
  | { e: 'app'; fn: Expr; arg: Expr; loc: Loc }
  | { e: 'binop'; op: '@' | '^'; l: Expr; r: Expr; loc: Loc }
  | { e: 'fun'; param: Pattern; body: Expr; loc: Loc };

// Record fields holding prose or test code: skipped token-wise, never parsed.
const DROPPED_FIELDS = new Set(['shortdesc', 'longdesc', 'test_excuse', 'tests']);

const KEYWORDS = new Set([
  'and', 'as', 'begin', 'do', 'done', 'else', 'end', 'exception', 'for', 'fun',
  'function', 'if', 'in', 'let', 'match', 'module', 'of', 'open', 'rec', 'then',
  'try', 'type', 'when', 'while', 'with',
]);

const tokLoc = (t: Token): Loc => ({ file: t.file, line: t.line });

class Parser {
  private pos = 0;
  constructor(private readonly toks: Token[], private readonly end: Loc) {}

  private peek(off = 0): Token | undefined { return this.toks[this.pos + off]; }
  private here(): Loc { const t = this.peek(); return t ? tokLoc(t) : this.end; }
  private is(s: string, off = 0): boolean {
    const t = this.peek(off);
    return t !== undefined && t.k !== 'str' && t.s === s;
  }
  private next(): Token {
    const t = this.toks[this.pos++];
    if (!t) fail(this.end, 'unexpected end of definition');
    return t;
  }
  private expect(s: string): Token {
    const t = this.next();
    if (t.k === 'str' || t.s !== s) fail(tokLoc(t), `expected '${s}', found ${describe(t)}`);
    return t;
  }

  parseAll(): Expr {
    const e = this.parseExpr();
    const t = this.peek();
    if (t) fail(tokLoc(t), `cannot parse ${describe(t)} here (outside the supported OCaml subset)`);
    return e;
  }

  private parseExpr(): Expr {
    if (this.is('fun')) {
      const loc = tokLoc(this.next());
      const param = this.parsePattern();
      this.expect('->');
      return { e: 'fun', param, body: this.parseExpr(), loc };
    }
    const first = this.parseConcat();
    if (!this.is(',')) return first;
    const items = [first];
    while (this.is(',')) { this.next(); items.push(this.parseConcat()); }
    return { e: 'tuple', items, loc: exprLoc(first) };
  }

  // '@' and '^' share one right-associative precedence level in OCaml.
  private parseConcat(): Expr {
    const l = this.parseApp();
    const t = this.peek();
    if (t && t.k === 'op' && (t.s === '@' || t.s === '^')) {
      this.next();
      return { e: 'binop', op: t.s, l, r: this.parseConcat(), loc: tokLoc(t) };
    }
    return l;
  }

  private startsAtom(t: Token | undefined): boolean {
    if (!t) return false;
    switch (t.k) {
      case 'int': case 'str': case 'uid': return true;
      case 'lid': return !KEYWORDS.has(t.s);
      case 'punct': return t.s === '(' || t.s === '[' || t.s === '{';
      case 'op': return false;
    }
  }

  private parseApp(): Expr {
    if (this.is('-') && this.peek(1)?.k === 'int') {
      const t = this.next();
      return { e: 'lit', v: { t: 'int', v: -parseIntLit(this.next()), loc: tokLoc(t) } };
    }
    let head = this.parseAtom();
    if (head.e === 'ctor') {
      if (this.startsAtom(this.peek())) head = { ...head, arg: this.parseAtom() };
      return head;
    }
    while (this.startsAtom(this.peek())) {
      head = { e: 'app', fn: head, arg: this.parseAtom(), loc: exprLoc(head) };
    }
    return head;
  }

  private parseAtom(): Expr {
    const t = this.next();
    const loc = tokLoc(t);
    switch (t.k) {
      case 'int': return { e: 'lit', v: { t: 'int', v: parseIntLit(t), loc } };
      case 'str': return { e: 'lit', v: { t: 'str', v: t.s, loc } };
      case 'lid':
        if (t.s === 'true' || t.s === 'false') return { e: 'lit', v: { t: 'bool', v: t.s === 'true', loc } };
        if (KEYWORDS.has(t.s)) fail(loc, `'${t.s}' expressions are outside the supported OCaml subset`);
        return { e: 'var', mod: null, name: t.s, loc };
      case 'uid':
        if (this.is('.')) {
          this.next();
          const name = this.next();
          if (name.k !== 'lid') fail(tokLoc(name), `expected a value name after '${t.s}.', found ${describe(name)}`);
          return { e: 'var', mod: t.s, name: name.s, loc };
        }
        return { e: 'ctor', name: t.s, arg: null, loc };
      case 'punct':
        if (t.s === '(') {
          if (this.is(')')) { this.next(); return { e: 'lit', v: { t: 'unit', loc } }; }
          const inner = this.parseExpr();
          this.expect(')');
          return inner;
        }
        if (t.s === '[') {
          const items: Expr[] = [];
          while (!this.is(']')) {
            items.push(this.parseExpr());
            if (!this.is(']')) this.expect(';');
          }
          this.next();
          return { e: 'list', items, loc };
        }
        if (t.s === '{') return this.parseRecord(loc);
        break;
      case 'op':
        break;
    }
    fail(loc, `unexpected ${describe(t)}`);
  }

  private parseRecord(loc: Loc): Expr {
    let base: Expr | null = null;
    if (this.peek()?.k === 'lid' && this.is('with', 1)) {
      const b = this.next();
      this.next();
      base = { e: 'var', mod: null, name: b.s, loc: tokLoc(b) };
    }
    const fields: { name: string; value: Expr; loc: Loc }[] = [];
    while (!this.is('}')) {
      const f = this.next();
      if (f.k !== 'lid') fail(tokLoc(f), `expected a record field name, found ${describe(f)}`);
      this.expect('=');
      if (DROPPED_FIELDS.has(f.s)) this.skipFieldValue();
      else fields.push({ name: f.s, value: this.parseExpr(), loc: tokLoc(f) });
      if (!this.is('}')) this.expect(';');
    }
    this.next();
    return { e: 'record', base, fields, loc };
  }

  private skipFieldValue(): void {
    const start = this.here();
    let depth = 0;
    for (;;) {
      const t = this.peek();
      if (!t) fail(start, 'unterminated record field');
      if (t.k === 'punct') {
        if (depth === 0 && (t.s === ';' || t.s === '}')) return;
        if (t.s === '(' || t.s === '[' || t.s === '{') depth++;
        if (t.s === ')' || t.s === ']' || t.s === '}') depth--;
      }
      this.next();
    }
  }

  private parsePattern(): Pattern {
    const t = this.next();
    if (t.k === 'lid' && !KEYWORDS.has(t.s)) return t.s === '_' ? { p: 'wild' } : { p: 'var', name: t.s };
    if (t.k === 'punct' && t.s === '(') {
      const items = [this.parsePattern()];
      while (this.is(',')) { this.next(); items.push(this.parsePattern()); }
      this.expect(')');
      return items.length === 1 ? items[0]! : { p: 'tuple', items };
    }
    fail(tokLoc(t), `unsupported pattern starting with ${describe(t)}`);
  }
}

function describe(t: Token): string {
  return t.k === 'str' ? 'a string literal' : `'${t.s}'`;
}

function parseIntLit(t: Token): number {
  const digits = t.s.replace(/[lLn]$/, '').replace(/_/g, '');
  const v = Number(digits);
  if (!Number.isSafeInteger(v)) fail(tokLoc(t), `integer literal ${t.s} out of range`);
  return v;
}

function exprLoc(e: Expr): Loc {
  return e.e === 'lit' ? e.v.loc : e.loc;
}

// ---------------------------------------------------------------- modules

// A top-level `let NAME = ...` whose body is kept as tokens until some
// evaluation needs it. `opaque` marks names bound by function definitions or
// tuple patterns: the reader cannot evaluate those, and says so if asked to.
interface Binding { name: string; item: number; body: Token[]; opaque: boolean; loc: Loc }
interface TypeDef { ctors: string[]; loc: Loc }

interface Module {
  file: string;
  tokens: Token[];
  bindings: Binding[];
  opens: { name: string; item: number }[];
  types: Map<string, TypeDef>;
  values: Map<Binding, Value | 'evaluating'>;
}

const TOPLEVEL_KEYWORDS = new Set(['let', 'type', 'open', 'and', 'exception', 'module', 'external']);

class Loader {
  private readonly modules = new Map<string, Module | null>();
  constructor(private readonly generatorDir: string) {}

  // OCaml module Foo_bar lives in foo_bar.ml. Modules without a file here
  // (the standard library, common/mlstdutils) are skipped by name lookup.
  private fileOf(name: string): string {
    return join(this.generatorDir, name.charAt(0).toLowerCase() + name.slice(1) + '.ml');
  }

  module(name: string): Module | null {
    if (!this.modules.has(name)) {
      const file = this.fileOf(name);
      this.modules.set(name, existsSync(file) ? indexModule(file) : null);
    }
    return this.modules.get(name)!;
  }

  required(name: string): Module {
    const m = this.module(name);
    if (!m) throw new SpecError(`${this.fileOf(name)}: file not found`);
    return m;
  }

  binding(m: Module, name: string, which: 'first' | 'last'): Binding {
    const all = m.bindings.filter((b) => b.name === name);
    const b = which === 'first' ? all[0] : all[all.length - 1];
    if (!b) throw new SpecError(`${m.file}: no top-level definition of ${name}`);
    return b;
  }

  value(m: Module, b: Binding): Value {
    if (b.opaque) fail(b.loc, `${b.name} is defined by a function or pattern binding, which this reader does not evaluate`);
    const cached = m.values.get(b);
    if (cached === 'evaluating') fail(b.loc, `${b.name} refers to itself`);
    if (cached) return cached;
    m.values.set(b, 'evaluating');
    const last = b.body[b.body.length - 1];
    const expr = new Parser(b.body, last ? tokLoc(last) : b.loc).parseAll();
    const v = this.eval(expr, { mod: m, item: b.item, locals: new Map() });
    m.values.set(b, v);
    return v;
  }

  // OCaml scoping at top level: the module's own earlier definitions first,
  // then the modules opened before this point, most recent open first.
  private lookup(ctx: Ctx, name: string, loc: Loc): Value {
    const own = ctx.mod.bindings.filter((b) => b.name === name && b.item < ctx.item);
    const latest = own[own.length - 1];
    if (latest) return this.value(ctx.mod, latest);
    const opens = ctx.mod.opens.filter((o) => o.item < ctx.item).reverse();
    for (const o of opens) {
      const m = this.module(o.name);
      const found = m?.bindings.filter((b) => b.name === name);
      const b = found?.[found.length - 1];
      if (m && b) return this.value(m, b);
    }
    fail(loc, `unbound value ${name}`);
  }

  private eval(e: Expr, ctx: Ctx): Value {
    switch (e.e) {
      case 'lit': return e.v;
      case 'var': {
        if (e.mod === null) return ctx.locals.get(e.name) ?? this.lookup(ctx, e.name, e.loc);
        if (e.mod === 'List') return listBuiltin(e.name, e.loc);
        const m = this.module(e.mod);
        if (!m) fail(e.loc, `module ${e.mod} has no source file in the generator directory`);
        const found = m.bindings.filter((b) => b.name === e.name);
        const b = found[found.length - 1];
        if (!b) fail(e.loc, `${e.mod}.${e.name} is not defined in ${m.file}`);
        return this.value(m, b);
      }
      case 'ctor': return { t: 'ctor', name: e.name, arg: e.arg ? this.eval(e.arg, ctx) : null, loc: e.loc };
      case 'tuple': case 'list': return { t: e.e, items: e.items.map((x) => this.eval(x, ctx)), loc: e.loc };
      case 'record': {
        const fields = new Map<string, Value>();
        if (e.base) {
          const base = this.eval(e.base, ctx);
          if (base.t !== 'record') fail(e.loc, `'with' needs a record, got ${base.t}`);
          for (const [k, v] of base.fields) fields.set(k, v);
        }
        const seen = new Set<string>();
        for (const f of e.fields) {
          if (seen.has(f.name)) fail(f.loc, `field ${f.name} set twice`);
          seen.add(f.name);
          if (e.base && !fields.has(f.name)) fail(f.loc, `field ${f.name} is not in the base record`);
          fields.set(f.name, this.eval(f.value, ctx));
        }
        return { t: 'record', fields, loc: e.loc };
      }
      case 'app': {
        const fn = this.eval(e.fn, ctx);
        if (fn.t !== 'fn') fail(e.loc, `applying a ${fn.t}, not a function`);
        return fn.call(this.eval(e.arg, ctx), e.loc);
      }
      case 'binop': {
        const l = this.eval(e.l, ctx);
        const r = this.eval(e.r, ctx);
        if (e.op === '@') return { t: 'list', items: [...asList(l, "'@' operand"), ...asList(r, "'@' operand")], loc: e.loc };
        return { t: 'str', v: asStr(l, "'^' operand") + asStr(r, "'^' operand"), loc: e.loc };
      }
      case 'fun':
        return {
          t: 'fn',
          loc: e.loc,
          call: (arg) => {
            const locals = new Map(ctx.locals);
            bindPattern(e.param, arg, locals);
            return this.eval(e.body, { ...ctx, locals });
          },
        };
    }
  }
}

interface Ctx { mod: Module; item: number; locals: Map<string, Value> }

function bindPattern(p: Pattern, v: Value, locals: Map<string, Value>): void {
  switch (p.p) {
    case 'wild': return;
    case 'var': locals.set(p.name, v); return;
    case 'tuple': {
      if (v.t !== 'tuple' || v.items.length !== p.items.length) fail(v.loc, `value does not match a ${p.items.length}-tuple pattern`);
      p.items.forEach((sub, i) => bindPattern(sub, v.items[i]!, locals));
    }
  }
}

function listBuiltin(name: string, loc: Loc): Value {
  switch (name) {
    case 'flatten':
      return { t: 'fn', loc, call: (l, at) => ({ t: 'list', items: asList(l, 'List.flatten argument').flatMap((x) => asList(x, 'List.flatten element')), loc: at }) };
    case 'map':
      return {
        t: 'fn', loc,
        call: (f) => ({
          t: 'fn', loc,
          call: (l, at) => {
            if (f.t !== 'fn') fail(at, 'List.map needs a function');
            return { t: 'list', items: asList(l, 'List.map argument').map((x) => f.call(x, at)), loc: at };
          },
        }),
      };
  }
  fail(loc, `List.${name} is not supported by this reader`);
}

function indexModule(file: string): Module {
  const tokens = tokenize(file, readFileSync(file, 'utf8'));
  const mod: Module = { file, tokens, bindings: [], opens: [], types: new Map(), values: new Map() };
  const items: Token[][] = [];
  for (const t of tokens) {
    if (t.col === 0 && t.k === 'lid' && TOPLEVEL_KEYWORDS.has(t.s)) items.push([t]);
    else if (items.length === 0) fail(tokLoc(t), `expected a top-level definition, found ${describe(t)}`);
    else items[items.length - 1]!.push(t);
  }
  let group = '';
  items.forEach((toks, item) => {
    const kw = toks[0]!;
    if (kw.s !== 'and') group = kw.s;
    if (group === 'open') {
      const m = toks[1];
      if (m?.k !== 'uid' || toks.length !== 2) fail(tokLoc(kw), 'unsupported open');
      mod.opens.push({ name: m.s, item });
    } else if (group === 'let') {
      indexLet(mod, toks, item);
    } else if (group === 'type') {
      indexType(mod, toks);
    }
  });
  return mod;
}

function depthOf(t: Token, depth: number): number {
  if (t.k !== 'punct') return depth;
  if ('([{'.includes(t.s)) return depth + 1;
  if (')]}'.includes(t.s)) return depth - 1;
  return depth;
}

function splitAtEquals(toks: Token[]): [Token[], Token[]] | null {
  let depth = 0;
  for (let i = 1; i < toks.length; i++) {
    const t = toks[i]!;
    if (depth === 0 && t.k === 'op' && t.s === '=') return [toks.slice(1, i), toks.slice(i + 1)];
    depth = depthOf(t, depth);
  }
  return null;
}

function indexLet(mod: Module, toks: Token[], item: number): void {
  const kw = toks[0]!;
  const split = splitAtEquals(toks);
  if (!split) fail(tokLoc(kw), 'top-level let without =');
  let [head, body] = split;
  if (head[0]?.s === 'rec') head = head.slice(1);
  const loc = tokLoc(kw);
  if (head.length === 1 && head[0]!.k === 'lid') {
    mod.bindings.push({ name: head[0]!.s, item, body, opaque: false, loc });
  } else if (head[1]?.s === ',') {
    for (const t of head) if (t.k === 'lid') mod.bindings.push({ name: t.s, item, body, opaque: true, loc });
  } else if (head[0]?.k === 'lid') {
    mod.bindings.push({ name: head[0].s, item, body, opaque: true, loc });
  }
}

// Only the constructor names of variant types are kept, to check that this
// reader's idea of each kind list matches the generator's.
function indexType(mod: Module, toks: Token[]): void {
  const split = splitAtEquals(toks);
  if (!split) return;
  const [head, body] = split;
  const name = head.filter((t) => t.k === 'lid').pop();
  if (!name) return;
  const ctors: string[] = [];
  let depth = 0;
  body.forEach((t, i) => {
    const prev = body[i - 1];
    const startsCase = i === 0 || (depth === 0 && prev?.k === 'op' && prev.s === '|');
    if (startsCase && t.k === 'uid' && body[i + 1]?.s !== '.') ctors.push(t.s);
    depth = depthOf(t, depth);
  });
  mod.types.set(name.s, { ctors, loc: tokLoc(name) });
}

// ---------------------------------------------------------------- value accessors

function asList(v: Value, what: string): Value[] {
  if (v.t !== 'list') fail(v.loc, `${what}: expected a list, got ${v.t}`);
  return v.items;
}
function asStr(v: Value, what: string): string {
  if (v.t !== 'str') fail(v.loc, `${what}: expected a string, got ${v.t}`);
  return v.v;
}
function asInt(v: Value, what: string): number {
  if (v.t !== 'int') fail(v.loc, `${what}: expected an int, got ${v.t}`);
  return v.v;
}
function asBool(v: Value, what: string): boolean {
  if (v.t !== 'bool') fail(v.loc, `${what}: expected a bool, got ${v.t}`);
  return v.v;
}
function asTuple(v: Value, n: number, what: string): Value[] {
  if (v.t !== 'tuple' || v.items.length !== n) fail(v.loc, `${what}: expected a ${n}-tuple`);
  return v.items;
}
function asRecord(v: Value, what: string): Map<string, Value> {
  if (v.t !== 'record') fail(v.loc, `${what}: expected a record, got ${v.t}`);
  return v.fields;
}

// Checks the constructor name against `arities` and returns its arguments,
// unpacking a tuple argument for multi-argument constructors.
function asCtor<K extends string>(v: Value, arities: Record<K, number>, what: string): [K, Value[]] {
  if (v.t !== 'ctor') fail(v.loc, `${what}: expected a constructor, got ${v.t}`);
  if (!Object.hasOwn(arities, v.name)) fail(v.loc, `${what}: unknown constructor ${v.name}`);
  const name = v.name as K;
  const n = arities[name];
  const args = v.arg === null ? [] : n > 1 ? asTuple(v.arg, n, `${what} ${name}`) : [v.arg];
  if (args.length !== n) fail(v.loc, `${what}: ${name} takes ${n} argument(s)`);
  return [name, args];
}

function asEnum<K extends string>(v: Value, names: readonly K[], what: string): K {
  return asCtor(v, Object.fromEntries(names.map((k) => [k, 0])) as Record<K, number>, what)[0];
}

function asOption(v: Value, what: string): Value | null {
  const [name, args] = asCtor(v, { None: 0, Some: 1 }, what);
  return name === 'None' ? null : args[0]!;
}

function field(rec: Map<string, Value>, name: string, at: Loc): Value {
  const v = rec.get(name);
  if (!v) fail(at, `record has no field ${name}`);
  return v;
}

// ---------------------------------------------------------------- conversion

const RET_ARITY = {
  RErr: 0, RInt: 1, RInt64: 1, RBool: 1, RConstString: 1, RConstOptString: 1,
  RString: 2, RStringList: 2, RStruct: 2, RStructList: 2, RHashtable: 3, RBufferOut: 1,
} satisfies Record<RetSpec['kind'], number>;

const ARG_ARITY = {
  Bool: 1, Int: 1, Int64: 1, String: 2, OptString: 1, StringList: 2, BufferIn: 1, Pointer: 2,
} satisfies Record<ArgSpec['kind'], number>;

const DEPRECATED_ARITY = { Not_deprecated: 0, Replaced_by: 1, Deprecated_no_replacement: 0 };
const IMPL_ARITY = { C: 0, OCaml: 1 };
const FISH_OUTPUT = { FishOutputOctal: 'octal', FishOutputHexadecimal: 'hex' } as const;

function convRet(v: Value): RetSpec {
  const [kind, a] = asCtor(v, RET_ARITY, 'return type');
  switch (kind) {
    case 'RErr':
      return { kind };
    case 'RInt': case 'RInt64': case 'RBool': case 'RConstString': case 'RConstOptString': case 'RBufferOut':
      return { kind };
    case 'RString': case 'RStringList':
      return { kind, sub: asEnum(a[0]!, RSTRING_KINDS, kind) };
    case 'RStruct': case 'RStructList':
      return { kind, struct: asStr(a[1]!, `${kind} struct name`) };
    case 'RHashtable':
      return { kind, key: asEnum(a[0]!, RSTRING_KINDS, kind), value: asEnum(a[1]!, RSTRING_KINDS, kind) };
  }
}

function convArg(v: Value): ArgSpec {
  const [kind, a] = asCtor(v, ARG_ARITY, 'argument');
  switch (kind) {
    case 'Bool': case 'Int': case 'Int64': case 'OptString': case 'BufferIn':
      return { kind, name: asStr(a[0]!, kind) };
    case 'String': case 'StringList':
      return { kind, name: asStr(a[1]!, kind), sub: asEnum(a[0]!, STRING_KINDS, kind) };
    case 'Pointer':
      return { kind, name: asStr(a[1]!, kind), ctype: asStr(a[0]!, kind) };
  }
}

function convOptArg(v: Value): OptArgSpec {
  const [kind, a] = asCtor(v, Object.fromEntries(OPTARG_KINDS.map((k) => [k, 1])) as Record<OptArgSpec['kind'], number>, 'optional argument');
  return { kind, name: asStr(a[0]!, kind) };
}

function camelCase(name: string): string {
  return name.split('_').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

// `procNr` is filled in by the caller, from proc_nr.ml.
function convAction(v: Value): ActionSpec {
  const r = asRecord(v, 'action');
  const at = v.loc;
  const f = (name: string): Value => field(r, name, at);
  const name = asStr(f('name'), 'name');
  const added = asTuple(f('added'), 3, 'added').map((x) => asInt(x, 'added')) as [number, number, number];
  const [ret, args, optargs] = asTuple(f('style'), 3, 'style');
  // Procedure numbers live only in proc_nr.ml; the generator rejects
  // definitions that set one, and so does this reader.
  if (asOption(f('proc_nr'), 'proc_nr') !== null) fail(at, `${name}: proc_nr must come from proc_nr.ml`);
  const [dep, depArgs] = asCtor(f('deprecated_by'), DEPRECATED_ARITY, 'deprecated_by');
  const [impl] = asCtor(f('impl'), IMPL_ARITY, 'impl');
  const fishOutput = asOption(f('fish_output'), 'fish_output');
  const optional = asOption(f('optional'), 'optional');
  const opts = asList(optargs!, 'optargs').map(convOptArg);
  const onceHadNoOptargs = asBool(f('once_had_no_optargs'), 'once_had_no_optargs');
  const explicitCamel = asStr(f('camel_name'), 'camel_name');
  // The generator gives an action that gained optargs after release a C
  // name with an "_opts" suffix, and that name becomes its alias; actions
  // without optargs keep whatever the definition says.
  const nonCAliases = opts.length > 0 && onceHadNoOptargs
    ? [`${name}_opts`]
    : asList(f('non_c_aliases'), 'non_c_aliases').map((x) => asStr(x, 'non_c_aliases'));
  return {
    name,
    procNr: null,
    added,
    ret: convRet(ret!),
    args: asList(args!, 'args').map(convArg),
    optargs: opts,
    visibility: asEnum(f('visibility'), VISIBILITIES, 'visibility'),
    deprecatedBy: dep === 'Not_deprecated' ? null
      : { replacedBy: dep === 'Replaced_by' ? asStr(depArgs[0]!, 'Replaced_by') : null },
    optional: optional === null ? null : asStr(optional, 'optional'),
    progress: asBool(f('progress'), 'progress'),
    cancellable: asBool(f('cancellable'), 'cancellable'),
    protocolLimitWarning: asBool(f('protocol_limit_warning'), 'protocol_limit_warning'),
    configOnly: asBool(f('config_only'), 'config_only'),
    blocking: asBool(f('blocking'), 'blocking'),
    onceHadNoOptargs,
    fishAlias: asList(f('fish_alias'), 'fish_alias').map((x) => asStr(x, 'fish_alias')),
    fishOutput: fishOutput === null ? null : FISH_OUTPUT[asEnum(fishOutput, Object.keys(FISH_OUTPUT) as (keyof typeof FISH_OUTPUT)[], 'fish_output')],
    camelName: explicitCamel !== '' ? explicitCamel : camelCase(name),
    implOCaml: impl === 'OCaml',
    nonCAliases,
  };
}

function convStruct(v: Value): StructSpec {
  const r = asRecord(v, 'struct');
  const name = asStr(field(r, 's_name', v.loc), 's_name');
  const seen = new Set<string>();
  const fields = asList(field(r, 's_cols', v.loc), 's_cols').map((col) => {
    const [n, t] = asTuple(col, 2, 'struct column');
    const colName = asStr(n!, 'column name');
    if (seen.has(colName)) fail(col.loc, `struct ${name}: duplicate column ${colName}`);
    seen.add(colName);
    return { name: colName, type: asEnum(t!, FIELD_TYPES, 'column type') };
  });
  return { name, camelName: asStr(field(r, 's_camel_name', v.loc), 's_camel_name'), fields };
}

// ---------------------------------------------------------------- checks against the generator

function checkVariants(types: Module): void {
  const expected: Record<string, readonly string[]> = {
    ret: Object.keys(RET_ARITY),
    rstringt: RSTRING_KINDS,
    argt: Object.keys(ARG_ARITY),
    stringt: STRING_KINDS,
    optargt: OPTARG_KINDS,
    visibility: VISIBILITIES,
    deprecated_by: Object.keys(DEPRECATED_ARITY),
    impl: Object.keys(IMPL_ARITY),
    fish_output_t: Object.keys(FISH_OUTPUT),
    field: FIELD_TYPES,
  };
  for (const [name, want] of Object.entries(expected)) {
    const def = types.types.get(name);
    if (!def) throw new SpecError(`${types.file}: type ${name} not found`);
    const got = [...def.ctors].sort().join(' ');
    if (got !== [...want].sort().join(' ')) {
      fail(def.loc, `type ${name} has constructors [${got}], this script knows [${[...want].sort().join(' ')}]; update src/spec/types.ts`);
    }
  }
}

// The camel-name and alias rules in convAction restate post-processing code
// in actions.ml (and the optgroup rule restates optgroups.ml). These token
// fingerprints make the script stop if that code changes in a new release.
function checkFingerprints(mod: Module, snippets: string[]): void {
  const texts = mod.tokens.map((t) => `${t.k}:${t.s}`);
  for (const snippet of snippets) {
    const want = tokenize('<fingerprint>', snippet).map((t) => `${t.k}:${t.s}`);
    const found = texts.some((_, i) => want.every((w, j) => texts[i + j] === w));
    if (!found) throw new SpecError(`${mod.file}: expected code not found: ${snippet}; re-check the rules this script restates`);
  }
}

// ---------------------------------------------------------------- guestfs_protocol.x

function readProtocol(file: string): { protocol: Protocol; procs: Map<string, { nr: number; loc: Loc }>; enumLoc: Loc } {
  const src = readFileSync(file, 'utf8');
  const lineAt = (idx: number): number => src.slice(0, idx).split('\n').length;
  const consts = new Map<string, number>();
  for (const m of src.matchAll(/^const\s+(\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*;/gm)) consts.set(m[1]!, Number(m[2]));
  const get = (name: string): number => {
    const v = consts.get(name);
    if (v === undefined) throw new SpecError(`${file}: no constant ${name}`);
    return v;
  };
  const protocol: Protocol = {
    program: get('GUESTFS_PROGRAM'),
    version: get('GUESTFS_PROTOCOL_VERSION'),
    launchFlag: get('GUESTFS_LAUNCH_FLAG'),
    cancelFlag: get('GUESTFS_CANCEL_FLAG'),
    progressFlag: get('GUESTFS_PROGRESS_FLAG'),
    messageMax: get('GUESTFS_MESSAGE_MAX'),
    maxChunkSize: get('GUESTFS_MAX_CHUNK_SIZE'),
    errorLen: get('GUESTFS_ERROR_LEN'),
    maxProcNr: get('GUESTFS_MAX_PROC_NR'),
  };
  const en = /enum\s+guestfs_procedure\s*\{([^}]*)\}/.exec(src);
  if (!en) throw new SpecError(`${file}: enum guestfs_procedure not found`);
  const procs = new Map<string, { nr: number; loc: Loc }>();
  for (const m of en[1]!.matchAll(/(\w+)\s*=\s*(\d+)/g)) {
    const loc = { file, line: lineAt(en.index + en[0].indexOf('{') + 1 + m.index) };
    if (!m[1]!.startsWith('GUESTFS_PROC_')) fail(loc, `unexpected enumerator ${m[1]}`);
    if (procs.has(m[1]!)) fail(loc, `duplicate enumerator ${m[1]}`);
    procs.set(m[1]!, { nr: Number(m[2]), loc });
  }
  return { protocol, procs, enumLoc: { file, line: lineAt(en.index) } };
}

// ---------------------------------------------------------------- assembly

function sourceLabel(srcDir: string): string {
  const configure = readFileSync(join(srcDir, 'configure.ac'), 'utf8');
  const part = (p: string): string => {
    const m = new RegExp(`m4_define\\(\\[libguestfs_${p}\\],\\s*\\[(\\d+)\\]\\)`).exec(configure);
    if (!m) throw new SpecError(`${join(srcDir, 'configure.ac')}: libguestfs_${p} not defined`);
    return m[1]!;
  };
  let label = `libguestfs ${part('major')}.${part('minor')}.${part('release')}`;
  const changelog = join(srcDir, 'debian', 'changelog');
  if (existsSync(changelog)) {
    const m = /^libguestfs \(([^)]+)\)/.exec(readFileSync(changelog, 'utf8'));
    if (m) label += ` (Debian ${m[1]})`;
  }
  return label;
}

function buildSpec(srcDir: string): Spec {
  const gen = join(srcDir, 'generator');
  const loader = new Loader(gen);
  const types = loader.required('Types');
  checkVariants(types);

  const actionsMod = loader.required('Actions');
  checkFingerprints(actionsMod, [
    'once_had_no_optargs = true } -> { f with c_name = f.name ^ "_opts";',
    'non_c_aliases = [ f.name ^ "_opts" ] }',
    'if f.camel_name = "" then { f with camel_name = make_camel_case f.name }',
    'a ^ String.uppercase_ascii (Str.first_chars b 1) ^ Str.string_after b 1',
    '(String.nsplit "_" name)',
  ]);
  // actions.ml rebinds these names while post-processing; the first
  // bindings are the plain concatenations of the per-area lists.
  const listOf = (name: string): Value[] =>
    asList(loader.value(actionsMod, loader.binding(actionsMod, name, 'first')), name);
  const nonDaemon = listOf('non_daemon_functions').map((v) => ({ v, daemon: false }));
  const daemon = listOf('daemon_functions').map((v) => ({ v, daemon: true }));

  const procMod = loader.required('Proc_nr');
  const procTable = new Map<string, { nr: number; loc: Loc }>();
  let prevNr = -Infinity;
  for (const entry of asList(loader.value(procMod, loader.binding(procMod, 'proc_nr', 'last')), 'proc_nr')) {
    const [nr, name] = asTuple(entry, 2, 'proc_nr entry');
    const n = asInt(nr!, 'proc_nr');
    const s = asStr(name!, 'proc_nr name');
    if (n <= prevNr) fail(entry.loc, `procedure numbers are not increasing at ${s}`);
    if (procTable.has(s)) fail(entry.loc, `duplicate procedure name ${s}`);
    prevNr = n;
    procTable.set(s, { nr: n, loc: entry.loc });
  }

  const actions: ActionSpec[] = [];
  const byName = new Map<string, ActionSpec>();
  const defined = new Map<ActionSpec, Loc>();
  for (const { v, daemon: isDaemon } of [...nonDaemon, ...daemon]) {
    const a = convAction(v);
    if (byName.has(a.name)) fail(v.loc, `duplicate action ${a.name}`);
    const proc = procTable.get(a.name);
    if (isDaemon) {
      if (!proc) fail(v.loc, `daemon action ${a.name} has no entry in proc_nr.ml`);
      a.procNr = proc.nr;
    } else if (proc) {
      fail(proc.loc, `${a.name} has a procedure number but is not a daemon action`);
    }
    byName.set(a.name, a);
    defined.set(a, v.loc);
    actions.push(a);
  }
  for (const [name, { loc }] of procTable) {
    if (!byName.has(name)) fail(loc, `proc_nr entry ${name} does not match any daemon action`);
  }

  const structsMod = loader.required('Structs');
  const structs = asList(loader.value(structsMod, loader.binding(structsMod, 'structs', 'last')), 'structs').map((v) => {
    const s = convStruct(v);
    return { s, loc: v.loc };
  });
  const structNames = new Set<string>();
  for (const { s, loc } of structs) {
    if (structNames.has(s.name)) fail(loc, `duplicate struct ${s.name}`);
    structNames.add(s.name);
  }
  for (const a of actions) {
    if ((a.ret.kind === 'RStruct' || a.ret.kind === 'RStructList') && !structNames.has(a.ret.struct)) {
      fail(defined.get(a)!, `action ${a.name} returns unknown struct ${a.ret.struct}`);
    }
  }

  const xFile = join(srcDir, 'common', 'protocol', 'guestfs_protocol.x');
  const { protocol, procs, enumLoc } = readProtocol(xFile);
  for (const a of actions) {
    const key = `GUESTFS_PROC_${a.name.toUpperCase()}`;
    const inX = procs.get(key);
    if (a.procNr !== null) {
      if (!inX) fail(enumLoc, `${key} is missing but proc_nr.ml says ${a.procNr}`);
      if (inX.nr !== a.procNr) fail(inX.loc, `${key} is ${inX.nr} but proc_nr.ml says ${a.procNr}`);
    } else if (inX) {
      fail(inX.loc, `${key} exists but ${a.name} is not a daemon action`);
    }
    procs.delete(key);
  }
  for (const [key, { loc }] of procs) fail(loc, `${key} has no matching action`);
  if (protocol.maxProcNr !== prevNr) {
    throw new SpecError(`${xFile}: GUESTFS_MAX_PROC_NR is ${protocol.maxProcNr} but proc_nr.ml ends at ${prevNr}`);
  }

  // optgroups.ml builds the groups from daemon actions only, and keeps a
  // list of retired groups that the daemon still reports as available.
  const optMod = loader.required('Optgroups');
  checkFingerprints(optMod, ['(actions |> daemon_functions)']);
  const groups = new Map<string, string[]>();
  for (const a of actions) {
    if (a.optional !== null && a.procNr !== null) groups.set(a.optional, [...(groups.get(a.optional) ?? []), a.name]);
  }
  for (const v of asList(loader.value(optMod, loader.binding(optMod, 'optgroups_retired', 'last')), 'optgroups_retired')) {
    const g = asStr(v, 'retired optgroup');
    if (groups.has(g)) fail(v.loc, `retired optgroup ${g} still has actions`);
    groups.set(g, []);
  }
  const optgroups: Record<string, string[]> = {};
  for (const g of [...groups.keys()].sort()) optgroups[g] = [...groups.get(g)!].sort();

  return {
    source: sourceLabel(srcDir),
    protocol,
    optgroups,
    structs: structs.map((x) => x.s).sort((x, y) => cmp(x.name, y.name)),
    actions: actions.sort((x, y) => cmp(x.name, y.name)),
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------- output

// JSON with short arrays and objects kept on one line, so that each
// argument or struct column reads as one line in diffs.
const WIDTH = 100;
function formatJson(v: unknown, indent = 0, prefix = 0): string {
  const flat = flatJson(v);
  if (v === null || typeof v !== 'object' || indent + prefix + flat.length <= WIDTH) return flat;
  const pad = ' '.repeat(indent + 2);
  const lines = Array.isArray(v)
    ? v.map((x) => pad + formatJson(x, indent + 2))
    : Object.entries(v).map(([k, x]) => {
      const key = `${JSON.stringify(k)}: `;
      return pad + key + formatJson(x, indent + 2, key.length);
    });
  const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
  return lines.length === 0 ? open + close : `${open}\n${lines.join(',\n')}\n${' '.repeat(indent)}${close}`;
}
function flatJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(flatJson).join(', ')}]`;
  const entries = Object.entries(v);
  return entries.length === 0 ? '{}' : `{ ${entries.map(([k, x]) => `${JSON.stringify(k)}: ${flatJson(x)}`).join(', ')} }`;
}

function fetchSource(dir: string): string {
  console.error(`spec: fetching the libguestfs source package into ${dir} (pass a source directory to skip this)`);
  execFileSync('apt-get', ['source', 'libguestfs'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  const unpacked = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name.startsWith('libguestfs-'));
  if (unpacked.length !== 1) throw new SpecError(`${dir}: expected one unpacked libguestfs-* directory`);
  return join(dir, unpacked[0]!.name);
}

function main(argv: string[]): void {
  const here = dirname(fileURLToPath(import.meta.url));
  let out = resolve(here, '..', 'src', 'commands', 'spec', 'spec.json');
  let srcDir: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--out') {
      const next = argv[++i];
      if (!next) throw new SpecError('--out needs a file name');
      out = resolve(next);
    } else if (arg.startsWith('-') || srcDir !== null) {
      throw new SpecError(`usage: spec-from-source.ts [SRCDIR] [--out FILE] (unexpected ${arg})`);
    } else {
      srcDir = resolve(arg);
    }
  }
  let spec: Spec;
  if (srcDir !== null) {
    spec = buildSpec(srcDir);
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'libguestfs-src-'));
    try {
      spec = buildSpec(fetchSource(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  writeFileSync(out, formatJson(spec) + '\n');
  const pub = spec.actions.filter((a) => a.visibility === 'VPublic' || a.visibility === 'VPublicNoFish').length;
  const daemonCount = spec.actions.filter((a) => a.procNr !== null).length;
  console.log(`spec: ${spec.actions.length} actions (${pub} public, ${daemonCount} daemon), ${spec.structs.length} structs`);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof SpecError)) throw e;
  console.error(`spec-from-source: ${e.message}`);
  process.exit(1);
}
