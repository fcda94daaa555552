// Spec-driven XDR codecs: one function encodes any daemon action's arguments,
// one decodes any return kind. No action is written out by hand; what an
// action's encoding takes is worked out from its spec on its first call and
// kept (a plan per action), so a call does no lookups by name or kind.

import type { ActionSpec, ArgSpec, OptArgSpec, RetSpec, StructSpec } from '../../spec/types.js';
import { structByName } from '../../spec/index.js';
import type { ArgValue, OptArgs, RetValue, StructValue } from '../../spec/values.js';
import { UsageError } from '../errors.js';
import { type XdrReader, XdrWriter } from './xdr.js';

function argError(action: string, name: string, expected: string, got: unknown): UsageError {
  const shown = typeof got === 'string' ? JSON.stringify(got) : typeof got;
  return new UsageError(`${action}: argument '${name}' must be ${expected}, got ${shown}`);
}

// A GUID: groups of 8-4-4-4-12 ASCII letters or digits (any case, and not
// only hex digits) joined by dashes, bare or inside one pair of braces.
const GUID_BODY = '[A-Za-z0-9]{8}(?:-[A-Za-z0-9]{4}){3}-[A-Za-z0-9]{12}';
const GUID = new RegExp(`^(?:${GUID_BODY}|\\{${GUID_BODY}\\})$`);

// Argument kinds whose value has a format libguestfs checks on the library
// side, before any daemon sees it (so an invalid one fails in guestfish and
// must fail here too), keyed by kind and sub-kind. Each check returns the
// error for an invalid value, in the words guestfish prints, or null.
const FORMAT_CHECKS: Readonly<Record<string, (action: string, name: string, v: ArgValue) => string | null>> = {
  'String:GUID': (action, name, v) => (GUID.test(v as string) ? null : `${action}: ${name}: parameter is not a valid GUID`),
  // Names inside one directory (lstatlist and friends): none may hold a slash.
  'StringList:Filename': (action, name, v) => {
    const bad = (v as readonly string[]).find((s) => s.includes('/'));
    return bad === undefined ? null : `${action}: ${name}: '${bad}' is not a file name`;
  },
};

function toBigInt(action: string, name: string, v: ArgValue): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw argError(action, name, 'a 64-bit integer', v);
}

function writeArg(w: XdrWriter, action: string, a: ArgSpec, v: ArgValue | undefined): void {
  switch (a.kind) {
    case 'Bool':
      if (typeof v !== 'boolean') throw argError(action, a.name, 'a boolean', v);
      w.bool(v);
      return;
    case 'Int':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
        throw argError(action, a.name, 'a 32-bit integer', v);
      }
      w.i32(v);
      return;
    case 'Int64':
      w.i64(toBigInt(action, a.name, v ?? null));
      return;
    case 'String':
      if (typeof v !== 'string') throw argError(action, a.name, `a string (${a.sub})`, v);
      w.string(v);
      return;
    case 'OptString':
      if (v === null || v === undefined) {
        w.bool(false);
      } else if (typeof v === 'string') {
        w.bool(true).string(v);
      } else {
        throw argError(action, a.name, 'a string or null', v);
      }
      return;
    case 'StringList':
      if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
        throw argError(action, a.name, 'a list of strings', v);
      }
      w.u32(v.length);
      for (const s of v as readonly string[]) w.string(s);
      return;
    case 'BufferIn':
      if (typeof v === 'string') w.opaque(Buffer.from(v, 'utf8'));
      else if (v instanceof Uint8Array) w.opaque(v);
      else throw argError(action, a.name, 'a buffer or string', v);
      return;
    case 'Pointer':
      throw new UsageError(`${action}: pointer arguments cannot cross the wire`);
  }
}

/** The zero value a missing optional argument is sent as (the bitmask marks it unset). */
const optArgZero: Record<OptArgSpec['kind'], ArgValue> = {
  OBool: false,
  OInt: 0,
  OInt64: 0n,
  OString: '',
  OStringList: [],
};

const optArgAsArg: Record<OptArgSpec['kind'], ArgSpec['kind']> = {
  OBool: 'Bool',
  OInt: 'Int',
  OInt64: 'Int64',
  OString: 'String',
  OStringList: 'StringList',
};

type ArgWriter = (w: XdrWriter, v: ArgValue | undefined) => void;
type FormatCheck = (action: string, name: string, v: ArgValue) => string | null;

/** What encoding one action's arguments takes, worked out once from its spec. */
interface EncodePlan {
  /** One writer per wire argument, with its position in `args` (FileIn/FileOut go as chunks, not here). */
  args: { index: number; write: ArgWriter }[];
  formatChecks: { index: number; name: string; check: FormatCheck }[];
  optargs: { name: string; write: ArgWriter; zero: ArgValue }[];
  known: ReadonlySet<string>;
}

const plans = new WeakMap<ActionSpec, EncodePlan>();

function planFor(action: ActionSpec): EncodePlan {
  let plan = plans.get(action);
  if (plan) return plan;
  const writer = (a: ArgSpec): ArgWriter => (w, v) => writeArg(w, action.name, a, v);
  plan = {
    args: action.args.flatMap((a, index) =>
      a.kind === 'String' && (a.sub === 'FileIn' || a.sub === 'FileOut') ? [] : [{ index, write: writer(a) }],
    ),
    formatChecks: action.args.flatMap((a, index) => {
      const check = FORMAT_CHECKS[`${a.kind}:${'sub' in a ? a.sub : ''}`];
      return check ? [{ index, name: a.name, check }] : [];
    }),
    optargs: action.optargs.map((o) => ({
      name: o.name,
      write: writer({ kind: optArgAsArg[o.kind], name: o.name, sub: 'PlainString' } as ArgSpec),
      zero: optArgZero[o.kind],
    })),
    known: new Set(action.optargs.map((o) => o.name)),
  };
  plans.set(action, plan);
  return plan;
}

export function encodeArgs(
  action: ActionSpec,
  args: readonly ArgValue[],
  optargs: OptArgs = {},
): { bytes: Buffer; bitmask: bigint } {
  if (args.length !== action.args.length) {
    throw new UsageError(
      `${action.name}: expects ${action.args.length} argument(s) (${action.args.map((a) => a.name).join(', ')}), got ${args.length}`,
    );
  }
  const plan = planFor(action);
  for (const k in optargs) {
    if (!plan.known.has(k)) {
      const list = action.optargs.map((o) => o.name).join(', ') || 'none';
      throw new UsageError(`${action.name}: unknown optional argument '${k}' (accepted: ${list})`);
    }
  }
  const w = new XdrWriter();
  for (const a of plan.args) a.write(w, args[a.index]);
  // After every argument's type is checked, as libguestfs checks formats
  // only once no argument is missing.
  for (const f of plan.formatChecks) {
    const problem = f.check(action.name, f.name, args[f.index]!);
    if (problem) throw new UsageError(problem);
  }
  let bitmask = 0n;
  plan.optargs.forEach((o, i) => {
    const v = optargs[o.name];
    if (v === undefined) {
      o.write(w, o.zero);
    } else {
      bitmask |= 1n << BigInt(i);
      o.write(w, v);
    }
  });
  return { bytes: w.bytes(), bitmask };
}

function readStruct(r: XdrReader, s: StructSpec): StructValue {
  const out: StructValue = {};
  for (const f of s.fields) {
    switch (f.type) {
      case 'FChar':
        out[f.name] = String.fromCharCode(r.i32());
        break;
      case 'FString':
        out[f.name] = r.string();
        break;
      case 'FBuffer':
        out[f.name] = Buffer.from(r.opaque());
        break;
      case 'FUUID':
        out[f.name] = r.fixedOpaque(32).toString('latin1');
        break;
      case 'FInt32':
        out[f.name] = r.i32();
        break;
      case 'FUInt32':
        out[f.name] = r.u32();
        break;
      case 'FInt64':
      case 'FBytes':
        out[f.name] = r.i64();
        break;
      case 'FUInt64':
        out[f.name] = r.u64();
        break;
      case 'FOptPercent':
        out[f.name] = r.f32();
        break;
    }
  }
  return out;
}

function readStringList(r: XdrReader): string[] {
  const n = r.u32();
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.string());
  return out;
}

export function decodeRet(ret: RetSpec, r: XdrReader): RetValue {
  switch (ret.kind) {
    case 'RErr':
      return undefined;
    case 'RInt':
      return r.i32();
    case 'RInt64':
      return r.i64();
    case 'RBool':
      return r.bool();
    case 'RString':
    case 'RConstString':
    case 'RConstOptString':
      return r.string();
    case 'RStringList':
      return readStringList(r);
    case 'RHashtable': {
      const flat = readStringList(r);
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
      return out;
    }
    case 'RBufferOut':
      return Buffer.from(r.opaque());
    case 'RStruct':
      return readStruct(r, structByName(ret.struct));
    case 'RStructList': {
      const s = structByName(ret.struct);
      const n = r.u32();
      const out: StructValue[] = [];
      for (let i = 0; i < n; i++) out.push(readStruct(r, s));
      return out;
    }
  }
}
