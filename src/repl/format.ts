// Prints results the way guestfish does, per return kind, so scripts that
// parse guestfish's output keep working.

import type { ActionSpec, StructSpec } from '../commands/spec/types.js';
import { structByName } from '../commands/spec/index.js';
import type { RetValue, StructValue } from '../runtime/protocol/codec.js';

function structLines(s: StructSpec, v: StructValue, indent: string): string {
  let out = '';
  for (const f of s.fields) {
    const x = v[f.name];
    let shown: string;
    if (f.type === 'FOptPercent') shown = (x as number) >= 0 ? `${Number(x)} %` : '';
    else if (f.type === 'FBuffer') {
      shown = [...(x as Buffer)].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    } else shown = String(x);
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
      if (action.fishOutput === 'octal') return `0${(v as number).toString(8)}\n`;
      if (action.fishOutput === 'hex') return `0x${(v as number).toString(16)}\n`;
      return `${v as number}\n`;
    case 'RInt64':
    case 'RBool':
      return `${String(v)}\n`;
    case 'RString':
    case 'RConstString':
    case 'RConstOptString':
      return v === null ? '(null)\n' : `${v as string}\n`;
    case 'RStringList':
      return (v as string[]).map((s) => `${s}\n`).join('');
    case 'RHashtable':
      return Object.entries(v as Record<string, string>).map(([k, x]) => `${k}: ${x}\n`).join('');
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
