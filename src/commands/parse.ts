// Turns the words of a guestfish-style command into typed arguments, driven by
// the spec: the same rules for every action, so no command is parsed by hand.

import type { ActionSpec, ArgSpec, OptArgSpec } from './spec/types.js';
import { UsageError } from '../runtime/errors.js';
import type { ArgValue, OptArgs } from '../runtime/protocol/codec.js';

// Size suffixes guestfish accepts on integers (gnulib xstrtol: k/K=KiB, M=MiB, …).
const SUFFIX: Record<string, bigint> = { k: 1024n, K: 1024n, M: 1024n ** 2n, G: 1024n ** 3n, T: 1024n ** 4n, P: 1024n ** 5n, E: 1024n ** 6n };

export function parseInteger(word: string, what: string): bigint {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKMGTPE]?)$/.exec(word);
  if (!m) throw new UsageError(`${what}: '${word}' is not a number (decimal, 0octal, 0xhex, optional k/M/G suffix)`);
  const digits = m[2]!;
  let n = digits.length > 1 && digits[0] === '0' && !/^0[xX]/.test(digits) ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  if (m[3]) n *= SUFFIX[m[3]]!;
  return m[1] === '-' ? -n : n;
}

export function parseBool(word: string, what: string): boolean {
  const w = word.toLowerCase();
  if (['1', 'true', 't', 'yes', 'y', 'on'].includes(w)) return true;
  if (['0', 'false', 'f', 'no', 'n', 'off', ''].includes(w)) return false;
  throw new UsageError(`${what}: '${word}' is not a boolean (true/false, yes/no, 1/0)`);
}

function int32(word: string, what: string): number {
  const n = parseInteger(word, what);
  if (n < -0x80000000n || n > 0x7fffffffn) throw new UsageError(`${what}: ${word} does not fit in a 32-bit integer`);
  return Number(n);
}

/** A StringList is one word holding space-separated items (guestfish's rule). */
function stringList(word: string): string[] {
  return word.split(/\s+/).filter(Boolean);
}

function parseArg(action: string, a: ArgSpec, word: string): ArgValue {
  const what = `${action}: argument '${a.name}'`;
  switch (a.kind) {
    case 'Bool':
      return parseBool(word, what);
    case 'Int':
      return int32(word, what);
    case 'Int64':
      return parseInteger(word, what);
    case 'OptString':
      return word === 'NULL' ? null : word;
    case 'StringList':
      return stringList(word);
    case 'String':
    case 'BufferIn':
      return word;
    case 'Pointer':
      throw new UsageError(`${what} cannot be given on a command line`);
  }
}

function parseOptArg(action: string, o: OptArgSpec, word: string): ArgValue {
  const what = `${action}: optional argument '${o.name}'`;
  switch (o.kind) {
    case 'OBool':
      return parseBool(word, what);
    case 'OInt':
      return int32(word, what);
    case 'OInt64':
      return parseInteger(word, what);
    case 'OString':
      return word;
    case 'OStringList':
      return stringList(word);
  }
}

export function signature(action: ActionSpec): string {
  const req = action.args.map((a) => a.name);
  const opt = action.optargs.map((o) => `[${o.name}:..]`);
  return [action.name.replaceAll('_', '-'), ...req, ...opt].join(' ');
}

export function parseCommandArgs(action: ActionSpec, words: readonly string[]): { args: ArgValue[]; optargs: OptArgs } {
  const n = action.args.length;
  if (words.length < n || (words.length > n && action.optargs.length === 0)) {
    throw new UsageError(
      `${action.name.replaceAll('_', '-')}: expects ${n} argument(s), got ${words.length}; usage: ${signature(action)}`,
    );
  }
  const args = action.args.map((a, i) => parseArg(action.name, a, words[i]!));
  const optargs: OptArgs = {};
  for (const word of words.slice(n)) {
    const colon = word.indexOf(':');
    const name = colon > 0 ? word.slice(0, colon) : '';
    const o = action.optargs.find((x) => x.name === name);
    if (!o) {
      const names = action.optargs.map((x) => `${x.name}:`).join(' ');
      throw new UsageError(`${action.name.replaceAll('_', '-')}: '${word}' is not an optional argument (accepted: ${names})`);
    }
    if (optargs[name] !== undefined) throw new UsageError(`${action.name}: optional argument '${name}' given twice`);
    optargs[name] = parseOptArg(action.name, o, word.slice(colon + 1));
  }
  return { args, optargs };
}
