// What a recipe declares about itself, read before anything launches: its
// params (so a mistyped `--param` fails in a second with a suggestion, not
// after a boot and an inspection, and `guestsh run RECIPE --help` can list
// them) and whether it only reads (then its images are opened read-only and
// nothing can be committed). A recipe's declarations are read from its
// source without running any of it, so they must be written out literally;
// the standard library's come from its own modules.

import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import type * as TS from 'typescript';
import { closestNames } from '../../spec/index.js';
import type { RecipeParamSpec, RecipeParamSpecs } from '../../spec/values.js';
import { UsageError } from '../errors.js';
import { stdlibFile } from './sandbox.js';
import { typescript } from './typecheck.js';

export interface RecipeDeclarations {
  /** `export const params = {…}`; null when the recipe declares none. */
  params: RecipeParamSpecs | null;
  /** `export const readOnly = true`: the recipe only reads. */
  readOnly: boolean;
}

/** What a recipe declares: from its entry's source, or a ready recipe's module. */
export async function declarations(recipe: { entry: string; std: string | null }): Promise<RecipeDeclarations> {
  if (recipe.std !== null) {
    const mod = (await import(pathToFileURL(await stdlibFile(recipe.std)).href)) as { params?: RecipeParamSpecs; readOnly?: boolean };
    return { params: mod.params ?? null, readOnly: mod.readOnly === true };
  }
  return declarationsInSource(recipe.entry, await readFile(recipe.entry, 'utf8'));
}

/** The literal `export const params = {…}` and `export const readOnly = …` of a recipe's source. */
export function declarationsInSource(file: string, source: string): RecipeDeclarations {
  const ts = typescript();
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true);
  const where = (n: TS.Node): string => {
    const { line, character } = sf.getLineAndCharacterOfPosition(n.getStart(sf));
    return `${file}:${line + 1}:${character + 1}`;
  };
  const notLiteral = (n: TS.Node, what: string): UsageError =>
    new UsageError(`${where(n)}: ${what}: a recipe's declarations are read without running it, so write them out literally ({ name: { description: '…', default: '…' } })`);
  const unwrap = (e: TS.Expression): TS.Expression =>
    ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e) ? unwrap(e.expression) : e;
  const literal = (e: TS.Expression): string | number | boolean | readonly string[] => {
    const v = unwrap(e);
    if (ts.isStringLiteral(v) || ts.isNoSubstitutionTemplateLiteral(v)) return v.text;
    if (ts.isNumericLiteral(v)) return Number(v.text);
    if (v.kind === ts.SyntaxKind.TrueKeyword) return true;
    if (v.kind === ts.SyntaxKind.FalseKeyword) return false;
    if (ts.isArrayLiteralExpression(v)) {
      return v.elements.map((x) => {
        const s = literal(x);
        if (typeof s !== 'string') throw notLiteral(x, 'a list of values holds strings only');
        return s;
      });
    }
    throw notLiteral(v, 'not a literal value');
  };
  const propName = (p: TS.ObjectLiteralElementLike): string => {
    if (!ts.isPropertyAssignment(p) || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) throw notLiteral(p, 'not a plain property');
    return p.name.text;
  };
  const found: RecipeDeclarations = { params: null, readOnly: false };
  for (const st of sf.statements) {
    if (!ts.isVariableStatement(st) || !st.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
    for (const d of st.declarationList.declarations) {
      if (!ts.isIdentifier(d.name)) continue;
      if (d.name.text === 'readOnly') {
        const v = d.initializer && literal(d.initializer);
        if (typeof v !== 'boolean') throw notLiteral(d, "'readOnly' is not true or false");
        found.readOnly = v;
        continue;
      }
      if (d.name.text !== 'params') continue;
      const init = d.initializer && unwrap(d.initializer);
      if (!init || !ts.isObjectLiteralExpression(init)) throw notLiteral(d, "'params' is not an object literal");
      const specs: Record<string, RecipeParamSpec> = {};
      for (const p of init.properties) {
        const name = propName(p);
        const body = unwrap((p as TS.PropertyAssignment).initializer);
        if (!ts.isObjectLiteralExpression(body)) throw notLiteral(body, `param '${name}' is not an object literal`);
        const spec: Record<string, unknown> = {};
        for (const f of body.properties) spec[propName(f)] = literal((f as TS.PropertyAssignment).initializer);
        specs[name] = checkedSpec(`${where(p)}: param '${name}'`, spec);
      }
      found.params = specs;
    }
  }
  return found;
}

const TYPES = ['string', 'number', 'boolean', 'list'] as const;

function checkedSpec(what: string, spec: Record<string, unknown>): RecipeParamSpec {
  for (const k of Object.keys(spec)) {
    if (!['description', 'default', 'required', 'type', 'values'].includes(k)) throw new UsageError(`${what}: unknown field '${k}' (a param has description, default, required, type, values)`);
  }
  if (typeof spec.description !== 'string') throw new UsageError(`${what}: needs a description (a string)`);
  if (spec.type !== undefined && !(TYPES as readonly unknown[]).includes(spec.type)) throw new UsageError(`${what}: type is one of ${TYPES.join(', ')}`);
  return spec as unknown as RecipeParamSpec;
}

const FLAG = /^(true|false|yes|no|on|off|1|0)$/i;

/**
 * The params a run gets: each given one checked against the declaration
 * (known, of its type, one of its values), missing required ones refused,
 * defaults filled in. `recipe` names the recipe in messages.
 */
export function checkParams(specs: RecipeParamSpecs, given: Readonly<Record<string, string>>, recipe: string): Record<string, string> {
  const names = Object.keys(specs);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(given)) {
    const spec = specs[name];
    if (!spec) {
      const near = closestNames(name, names, 3);
      const hint = near.length ? `did you mean ${near.join(', ')}? ` : '';
      throw new UsageError(
        `${recipe} has no param '${name}': ${hint}${names.length === 0 ? 'it takes none' : names.length <= 8 ? `it takes ${names.join(', ')}` : `it takes ${names.length}`} (guestsh run ${recipe} --help describes them)`,
      );
    }
    const bad = (why: string): UsageError => new UsageError(`--param ${name}=${value}: ${why} (guestsh run ${recipe} --help)`);
    if (spec.type === 'number' && !Number.isFinite(Number(value))) throw bad('not a number');
    if (spec.type === 'boolean' && !FLAG.test(value)) throw bad('not a flag (true/false, yes/no, on/off, 1/0)');
    if (spec.values && !spec.values.includes(value)) throw bad(`not one of ${spec.values.join(', ')}`);
    out[name] = value;
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (name in out) continue;
    if (spec.default !== undefined) out[name] = String(spec.default);
    else if (spec.required) throw new UsageError(`${recipe} needs --param ${name}=… (${spec.description})`);
  }
  return out;
}

/** `guestsh run RECIPE --help`: the recipe's params, one per line. */
export function describeParams(specs: RecipeParamSpecs | null, recipe: string): string {
  if (specs === null) return `${recipe} declares no params (a recipe declares them with: export const params = { name: { description: '…' } })\n`;
  const names = Object.keys(specs);
  if (names.length === 0) return `${recipe} takes no params\n`;
  const rows = names.map((n) => {
    const s = specs[n]!;
    const what = s.values ? s.values.join('|') : (s.type ?? 'string');
    const extra = [s.required ? 'required' : null, s.default !== undefined ? `default ${String(s.default)}` : null].filter(Boolean).join(', ');
    return `  --param ${`${n}=${what}`.padEnd(34)} ${s.description}${extra ? ` (${extra})` : ''}`;
  });
  return `params of ${recipe}:\n${rows.join('\n')}\n`;
}
