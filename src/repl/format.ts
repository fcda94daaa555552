// Prints results the way guestfish does, per return kind, so scripts that
// parse guestfish's output keep working; and the --json form.
//
// guestfish's rules (fish/run-*.c, common/structs/structs-print.c):
// - RInt: decimal; with fish_output octal "0NNN" / hex "0xNN" (plain "0" for 0)
// - RInt64: decimal (hex for c_pointer); RBool: true / false
// - RString / RConstString: the string and a newline; RConstOptString: "(null)" for NULL
// - RStringList: one line per item; RHashtable: "key: value" per pair
// - RBufferOut: the raw bytes, no newline added
// - RStruct: "field: value" lines; RStructList: "[i] = {", fields indented two spaces, "}"
// - struct fields: FChar as a character, FUUID the 32 bytes, FBuffer with
//   non-printable bytes as \xNN, FOptPercent "%g %" or empty when negative.

import type { ActionSpec, StructSpec } from '../spec/types.js';
import { structByName } from '../spec/index.js';
import type { RetValue, StructValue } from '../spec/values.js';

/** C's printf %g (precision 6). */
export function cG(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const exp = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(6)))));
  if (exp < -4 || exp >= 6) {
    let [mant, e] = x.toExponential(5).split('e') as [string, string];
    if (mant.includes('.')) mant = mant.replace(/0+$/, '').replace(/\.$/, '');
    const en = Number(e);
    return `${mant}e${en < 0 ? '-' : '+'}${String(Math.abs(en)).padStart(2, '0')}`;
  }
  let s = x.toFixed(Math.max(0, 5 - exp));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

function printable(b: Buffer): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}

function structLines(s: StructSpec, v: StructValue, indent: string): string {
  let out = '';
  for (const f of s.fields) {
    const x = v[f.name];
    let shown: string;
    switch (f.type) {
      case 'FOptPercent':
        shown = (x as number) >= 0 ? `${cG(x as number)} %` : '';
        break;
      case 'FBuffer':
        shown = printable(x as Buffer);
        break;
      default:
        shown = String(x);
    }
    out += `${indent}${f.name}: ${shown}\n`;
  }
  return out;
}

/** The text guestfish would print for this result (may be empty). */
export function formatResult(action: ActionSpec, v: RetValue): string | Buffer {
  const ret = action.ret;
  switch (ret.kind) {
    case 'RErr':
      return '';
    case 'RInt':
    case 'RInt64': {
      const n = v as number | bigint;
      if (action.fishOutput === 'octal') return `${n ? '0' : ''}${(ret.kind === 'RInt' ? BigInt.asUintN(32, BigInt(n)) : BigInt(n)).toString(8)}\n`;
      if (action.fishOutput === 'hex') {
        const u = ret.kind === 'RInt' ? BigInt.asUintN(32, BigInt(n)) : BigInt.asUintN(64, BigInt(n));
        return `${n ? '0x' : ''}${u.toString(16)}\n`;
      }
      return `${String(n)}\n`;
    }
    case 'RBool':
      return v ? 'true\n' : 'false\n';
    case 'RString':
    case 'RConstString':
    case 'RConstOptString':
      return v === null || v === undefined ? '(null)\n' : `${v as string}\n`;
    case 'RStringList':
      return (v as string[]).map((s) => `${s}\n`).join('');
    case 'RHashtable':
      return hashPairs(v).map(([k, x]) => `${k}: ${x}\n`).join('');
    case 'RBufferOut':
      return v as Buffer;
    case 'RStruct':
      return structLines(structByName(ret.struct), v as StructValue, '');
    case 'RStructList': {
      const s = structByName(ret.struct);
      return (v as StructValue[]).map((e, i) => `[${i}] = {\n${structLines(s, e, '  ')}}\n`).join('');
    }
  }
}

function hashPairs(v: RetValue): [string, string][] {
  if (v instanceof Map) return [...(v as Map<string, string>).entries()];
  if (Array.isArray(v)) {
    const out: [string, string][] = [];
    for (let i = 0; i + 1 < v.length; i += 2) out.push([String(v[i]), String(v[i + 1])]);
    return out;
  }
  return Object.entries(v as Record<string, string>);
}

/**
 * --json: one JSON document per result, on one line. 64-bit integers (RInt64,
 * and FInt64/FUInt64/FBytes struct fields) are printed as JSON numbers when
 * they are exactly representable (|n| <= 2^53-1) and as decimal strings
 * otherwise, so no value is ever silently rounded. Buffers (RBufferOut,
 * FBuffer) are strings when they are valid UTF-8, otherwise
 * {"base64": "..."}. RErr prints nothing. FOptPercent is null when unset.
 */
export function formatJson(action: ActionSpec, v: RetValue): string {
  // One line per command, so a reader can pair output lines with commands.
  if (action.ret.kind === 'RErr') return 'null\n';
  const conv = (x: unknown): unknown => {
    if (typeof x === 'bigint') return x >= -(2n ** 53n - 1n) && x <= 2n ** 53n - 1n ? Number(x) : x.toString();
    if (Buffer.isBuffer(x)) {
      const s = x.toString('utf8');
      return Buffer.from(s, 'utf8').equals(x) ? s : { base64: x.toString('base64') };
    }
    if (x instanceof Map) return Object.fromEntries([...x.entries()].map(([k, y]) => [k, conv(y)]));
    if (Array.isArray(x)) return x.map(conv);
    if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, conv(y)]));
    return x === undefined ? null : x;
  };
  let value: unknown = v;
  if (action.ret.kind === 'RStruct' || action.ret.kind === 'RStructList') {
    const s = structByName(action.ret.struct);
    const fix = (e: StructValue): unknown => {
      const o: Record<string, unknown> = {};
      for (const f of s.fields) {
        const x = e[f.name];
        o[f.name] = f.type === 'FOptPercent' ? ((x as number) >= 0 ? x : null) : conv(x);
      }
      return o;
    };
    value = action.ret.kind === 'RStruct' ? fix(v as StructValue) : (v as StructValue[]).map(fix);
  } else if (action.ret.kind === 'RHashtable') {
    value = Object.fromEntries(hashPairs(v));
  } else {
    value = conv(v);
  }
  return `${JSON.stringify(value)}\n`;
}
