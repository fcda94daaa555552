// Writes src/spec/api.generated.ts, the typed guestfs API, from
// src/spec/spec.json.
//
//   npx tsx scripts/gen-api.ts [--out FILE]
//
// Output is a pure function of spec.json (sorted, no timestamps), so
// test/api.test.ts can regenerate it and demand byte equality.

import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publicActions, spec } from '../src/spec/index.js';
import type { ActionSpec, ArgSpec, FieldType, OptArgSpec, RetSpec, StructSpec } from '../src/spec/types.js';

class GenError extends Error {}

/**
 * add_drive → addDrive, is_lv → isLv, mke2fs_J → mke2fsJ, list_9p → list9p:
 * every "_" is dropped and the character after it upper-cased; nothing else
 * changes. libguestfs's own camel_name is not used because it upper-cases
 * acronyms (IsLV, Mount9P), which reads badly in lowerCamelCase.
 */
function methodName(action: string): string {
  return action.replace(/_(.)/g, (_m, c: string) => c.toUpperCase());
}

// Parameters keep the spec's names except those strict-mode code forbids
// (command's `arguments`), which get a trailing underscore. A reserved word
// would make tsc reject the generated file, so it cannot slip through.
const forbiddenParams = new Set(['arguments', 'eval']);
function paramName(arg: ArgSpec): string {
  return forbiddenParams.has(arg.name) ? `${arg.name}_` : arg.name;
}

function optionsName(action: string): string {
  const m = methodName(action);
  return `${m[0]!.toUpperCase()}${m.slice(1)}Options`;
}

// libguestfs's camel names are already PascalCase and are what its Go, Java
// and C# bindings call these structs.
function structName(s: StructSpec): string {
  return s.camelName;
}

const fieldType: Record<FieldType, string> = {
  FChar: 'string',
  FString: 'string',
  FBuffer: 'Buffer',
  FUInt32: 'number',
  FInt32: 'number',
  FUInt64: 'bigint',
  FInt64: 'bigint',
  FBytes: 'bigint',
  FUUID: 'string',
  FOptPercent: 'number',
};

// Inputs accept what the codec accepts: a safe-integer number for Int64 and
// a string for BufferIn are converted there.
function argType(a: ArgSpec): string {
  switch (a.kind) {
    case 'Bool':
      return 'boolean';
    case 'Int':
      return 'number';
    case 'Int64':
      return 'bigint | number';
    case 'String':
      return 'string';
    case 'OptString':
      return 'string | null';
    case 'StringList':
      return 'readonly string[]';
    case 'BufferIn':
      return 'Uint8Array | string';
    case 'Pointer':
      // A C pointer (virDomainPtr) has no JavaScript value, so no call compiles.
      return 'never';
  }
}

const optArgType: Record<OptArgSpec['kind'], string> = {
  OBool: 'boolean',
  OInt: 'number',
  OInt64: 'bigint | number',
  OString: 'string',
  OStringList: 'readonly string[]',
};

function retType(r: RetSpec, structs: Map<string, StructSpec>): string {
  switch (r.kind) {
    case 'RErr':
      return 'void';
    case 'RInt':
      return 'number';
    case 'RInt64':
      return 'bigint';
    case 'RBool':
      return 'boolean';
    case 'RString':
    case 'RConstString':
      return 'string';
    case 'RConstOptString':
      return 'string | null';
    case 'RStringList':
      return 'string[]';
    case 'RHashtable':
      return 'Record<string, string>';
    case 'RBufferOut':
      return 'Buffer';
    case 'RStruct':
    case 'RStructList': {
      const s = structs.get(r.struct);
      if (!s) throw new GenError(`return type names unknown struct ${r.struct}`);
      return r.kind === 'RStruct' ? structName(s) : `${structName(s)}[]`;
    }
  }
}

// Several string kinds are just `string` in TypeScript; naming the kind keeps
// device/guest-path/host-path apart in editor hints.
function paramDoc(a: ArgSpec): string | null {
  if (a.kind !== 'String' && a.kind !== 'StringList') return null;
  const what =
    a.sub === 'FileIn' ? 'host path, uploaded (FileIn)'
    : a.sub === 'FileOut' ? 'host path, downloaded to (FileOut)'
    : a.sub === 'PlainString' ? null
    : a.sub;
  if (what === null) return null;
  return a.kind === 'StringList' ? `list of ${what}` : what;
}

function since([major, minor, release]: [number, number, number]): string {
  // libguestfs writes its 0.0.x releases as "0.x".
  return major === 0 && minor === 0 ? `0.${release}` : `${major}.${minor}.${release}`;
}

function byName<T extends { name: string }>(xs: T[]): T[] {
  return [...xs].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}

function methodDoc(a: ActionSpec, methodOf: Map<string, string>): string[] {
  const lines = [`libguestfs \`${a.name}\``];
  if (a.optional) lines.push(`Feature group: \`${a.optional}\``);
  for (const arg of a.args) {
    const d = paramDoc(arg);
    if (d) lines.push(`@param ${paramName(arg)} ${d}`);
  }
  lines.push(`@since ${since(a.added)}`);
  if (a.deprecatedBy) {
    const r = a.deprecatedBy.replacedBy;
    const m = r === null ? undefined : methodOf.get(r);
    if (r === null) lines.push('@deprecated No replacement.');
    else if (m) lines.push(`@deprecated Use {@link GuestfsApi.${m} | ${m}} instead.`);
    else lines.push(`@deprecated Replaced by libguestfs \`${r}\`, which is not public.`);
  }
  return ['  /**', ...lines.map((l) => `   * ${l}`), '   */'];
}

function render(): string {
  const actions = byName(publicActions());
  const structs = new Map(spec.structs.map((s) => [s.name, s]));

  // Two actions mapping to one method would silently become an overload.
  const methodOf = new Map<string, string>();
  const owner = new Map<string, string>();
  for (const a of actions) {
    const m = methodName(a.name);
    const prev = owner.get(m);
    if (prev) throw new GenError(`${a.name} and ${prev} both become method ${m}`);
    owner.set(m, a.name);
    methodOf.set(a.name, m);
  }
  const typeOwner = new Map<string, string>([['GuestfsApi', 'the API interface']]);
  const claimType = (t: string, by: string): void => {
    const prev = typeOwner.get(t);
    if (prev) throw new GenError(`type name ${t} used by both ${prev} and ${by}`);
    typeOwner.set(t, by);
  };

  const out: string[] = [
    `// Generated by scripts/gen-api.ts from src/spec/spec.json`,
    `// (${spec.source}). Do not edit; run \`npm run gen\`.`,
    '//',
    '// Committed rather than produced at build time: spec.json itself is',
    '// committed because producing it needs the libguestfs source package, and',
    '// with this file committed too, tsc, editors and code review see the API',
    '// without a generation step. test/api.test.ts fails when it is stale.',
    '',
  ];

  for (const s of byName(spec.structs)) {
    claimType(structName(s), `struct ${s.name}`);
    out.push(`/** libguestfs struct \`${s.name}\` */`, `export interface ${structName(s)} {`);
    for (const f of s.fields) out.push(`  ${f.name}: ${fieldType[f.type]};`);
    out.push('}', '');
  }

  for (const a of actions) {
    if (a.optargs.length === 0) continue;
    claimType(optionsName(a.name), `optional arguments of ${a.name}`);
    out.push(`/** Optional arguments of \`${a.name}\` */`, `export interface ${optionsName(a.name)} {`);
    for (const o of a.optargs) out.push(`  ${o.name}?: ${optArgType[o.kind]};`);
    out.push('}', '');
  }

  out.push('export interface GuestfsApi {');
  actions.forEach((a, i) => {
    if (i > 0) out.push('');
    const params = a.args.map((arg) => `${paramName(arg)}: ${argType(arg)}`);
    if (a.optargs.length > 0) params.push(`opts?: ${optionsName(a.name)}`);
    out.push(...methodDoc(a, methodOf));
    out.push(`  ${methodOf.get(a.name)}(${params.join(', ')}): Promise<${retType(a.ret, structs)}>;`);
  });
  out.push('}', '');

  out.push(
    '/** Method name → libguestfs action name, one entry per GuestfsApi method. */',
    'export const apiMethods = {',
    ...actions.map((a) => `  ${methodOf.get(a.name)}: '${a.name}',`),
    '} as const satisfies Record<keyof GuestfsApi, string>;',
    '',
  );
  return out.join('\n');
}

function main(argv: string[]): void {
  const here = dirname(fileURLToPath(import.meta.url));
  let out = resolve(here, '..', 'src', 'spec', 'api.generated.ts');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && argv[i + 1]) out = resolve(argv[++i]!);
    else throw new GenError(`usage: gen-api.ts [--out FILE] (unexpected ${argv[i]})`);
  }
  writeFileSync(out, render());
}

try {
  main(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof GenError)) throw e;
  console.error(`gen-api: ${e.message}`);
  process.exit(1);
}
