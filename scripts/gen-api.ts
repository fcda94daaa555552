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

function hasFileArg(a: ActionSpec): boolean {
  return a.args.some((arg) => arg.kind === 'String' && (arg.sub === 'FileIn' || arg.sub === 'FileOut'));
}

function methodDoc(a: ActionSpec, methodOf: Map<string, string>): string[] {
  const lines = [`libguestfs \`${a.name}\``];
  if (a.optional) lines.push(`Feature group: \`${a.optional}\``);
  for (const arg of a.args) {
    const d = paramDoc(arg);
    if (d) lines.push(`@param ${paramName(arg)} ${d}`);
  }
  if (hasFileArg(a)) lines.push('@param transfer in-memory data or receiver instead of the host path, and cancellation');
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

/**
 * A method signature's parameters: the spec's arguments, then the options
 * object, then (for FileIn/FileOut actions) the transfer. `required` makes
 * the trailing ones required, for implementations the dispatcher always
 * hands both.
 */
function params(a: ActionSpec, trailing: 'optional' | 'required'): string[] {
  const q = trailing === 'optional' ? '?' : '';
  const ps = a.args.map((arg) => `${paramName(arg)}: ${argType(arg)}`);
  if (a.optargs.length > 0) ps.push(`opts${q}: ${optionsName(a.name)}`);
  if (hasFileArg(a)) ps.push(`transfer${q}: CallTransfer`);
  return ps;
}

// Internal and debug actions are guestfsd's own plumbing (internal_write,
// internal_autosync, debug sh, …): guestsh's runtime calls them, libguestfs
// never exposes them to its users, so they get an interface of their own
// instead of joining GuestfsApi.
function isInternal(a: ActionSpec): boolean {
  return a.visibility === 'VInternal' || a.visibility === 'VDebug';
}

function render(): string {
  const actions = byName(publicActions());
  const internal = byName(spec.actions.filter(isInternal));
  const library = byName(spec.actions.filter((a) => a.procNr === null));
  const structs = new Map(spec.structs.map((s) => [s.name, s]));

  // Two actions mapping to one method would silently become an overload (or,
  // across the two interfaces, the same method name meaning two actions).
  const methodOf = new Map<string, string>();
  const owner = new Map<string, string>();
  for (const a of [...actions, ...internal]) {
    const m = methodName(a.name);
    const prev = owner.get(m);
    if (prev) throw new GenError(`${a.name} and ${prev} both become method ${m}`);
    owner.set(m, a.name);
    methodOf.set(a.name, m);
  }
  const typeOwner = new Map<string, string>([
    ['GuestfsApi', 'the API interface'],
    ['GuestfsInternalApi', 'the internal API interface'],
    ['LibraryImplementations', 'the library implementations type'],
    ['CallTransfer', 'the transfer argument'],
  ]);
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
    "import type { CallTransfer } from './values.js';",
    '',
  ];

  for (const s of byName(spec.structs)) {
    claimType(structName(s), `struct ${s.name}`);
    out.push(`/** libguestfs struct \`${s.name}\` */`, `export interface ${structName(s)} {`);
    for (const f of s.fields) out.push(`  ${f.name}: ${fieldType[f.type]};`);
    out.push('}', '');
  }

  const typed = byName([...new Map([...actions, ...internal, ...library].map((a) => [a.name, a])).values()]);
  for (const a of typed) {
    if (a.optargs.length === 0) continue;
    claimType(optionsName(a.name), `optional arguments of ${a.name}`);
    out.push(`/** Optional arguments of \`${a.name}\` */`, `export interface ${optionsName(a.name)} {`);
    for (const o of a.optargs) out.push(`  ${o.name}?: ${optArgType[o.kind]};`);
    out.push('}', '');
  }

  const methods = (list: ActionSpec[]): void => {
    list.forEach((a, i) => {
      if (i > 0) out.push('');
      out.push(...methodDoc(a, methodOf));
      out.push(`  ${methodOf.get(a.name)}(${params(a, 'optional').join(', ')}): Promise<${retType(a.ret, structs)}>;`);
    });
  };
  out.push('export interface GuestfsApi {');
  methods(actions);
  out.push('}', '');

  out.push(
    '/**',
    " * libguestfs's internal and debug actions, for guestsh's own runtime code",
    ' * (library-side actions, launch, autosync). Not part of the public API.',
    ' */',
    'export interface GuestfsInternalApi {',
  );
  methods(internal);
  out.push('}', '');

  out.push(
    '/**',
    ' * The library-side actions (no daemon procedure), as the dispatcher calls',
    " * their implementations: the host first, then the spec's arguments, the",
    ' * options object (empty when none were given) and, for FileIn/FileOut',
    ' * arguments, the transfer. Function-typed properties, not methods, so that',
    ' * parameter types are checked strictly.',
    ' */',
    'export interface LibraryImplementations<Host> {',
  );
  for (const a of library) {
    const ret = retType(a.ret, structs);
    out.push(`  ${a.name}: (${['host: Host', ...params(a, 'required')].join(', ')}) => Promise<${ret}> | ${ret};`);
  }
  out.push('}', '');

  const table = (name: string, iface: string, what: string, list: ActionSpec[]): void => {
    out.push(
      `/** Method name → libguestfs action name, one entry per ${what} method. */`,
      `export const ${name} = {`,
      ...list.map((a) => `  ${methodOf.get(a.name)}: '${a.name}',`),
      `} as const satisfies Record<keyof ${iface}, string>;`,
      '',
    );
  };
  table('apiMethods', 'GuestfsApi', 'GuestfsApi', actions);
  table('internalApiMethods', 'GuestfsInternalApi', 'GuestfsInternalApi', internal);
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
