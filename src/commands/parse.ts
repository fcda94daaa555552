// Turns the words of a guestfish-style command into typed arguments, driven by
// the spec: the same rules for every action, so no command is parsed by hand.
//
// The rules follow guestfish's:
// - integers are read like C strtoll with base 0 (0x hex, leading 0 octal),
//   optionally followed by a size suffix (k/K = KiB, M, G, T, P, E; "KiB" is
//   binary, "KB" decimal), as gnulib's xstrtoll with suffixes "0kKMGTPEZY";
// - booleans: 1/true/t/yes/y/on and 0/false/f/no/n/off, any case;
// - an OptString given as the empty word is NULL;
// - a StringList is one word whose items are separated by blanks, where
//   single quotes group and \' is a literal quote;
// - optional arguments are name:value words after the required ones.

import type { ActionSpec, ArgSpec, OptArgSpec } from '../spec/types.js';
import { UsageError } from '../runtime/errors.js';
import type { ArgValue, OptArgs } from '../spec/values.js';

const SUFFIX_POWER: Record<string, number> = { k: 1, K: 1, M: 2, G: 3, T: 4, P: 5, E: 6, Z: 7, Y: 8 };
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A word that is not a valid argument. `guestfish` is the line guestfish
 * prints for it (COMMAND: ARGUMENT: reason, in its words), which a shell
 * speaking guestfish's dialect prints instead of the message.
 */
export class ArgumentError extends UsageError {
  override name = 'ArgumentError';
  constructor(
    message: string,
    readonly guestfish: string,
  ) {
    super(message);
  }
}

/** Who is parsing a word: the message's prefix, and guestfish's "command: argument" for its own line. */
export interface ArgumentName {
  what: string;
  command: string;
  arg: string;
}

const INTEGER_HELP = '(decimal, 0octal, 0xhex, optional k/M/G/T/P/E suffix)';

/**
 * gnulib's xstrtoll result for a word parseInteger refuses, as guestfish
 * reports it: 1 overflow, 2 a character after the number that is no
 * suffix, 3 both, 4 no number at all.
 */
function xstrtollCode(word: string): number {
  const m = /^\s*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(word);
  if (!m) return 4;
  const digits = m[1]!;
  const n = /^0[xX]/.test(digits) ? BigInt(digits) : digits.length > 1 ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  const overflow = n > INT64_MAX + (word.trimStart().startsWith('-') ? 1n : 0n);
  if (m[0].length < word.length) return overflow ? 3 : 2;
  return overflow ? 1 : 0;
}

function integerError(word: string, name: ArgumentName | string, message: string): UsageError {
  if (typeof name === 'string') return new UsageError(`${name}: ${message}`);
  return new ArgumentError(`${name.what}: ${message}`, `${name.command}: ${name.arg}: invalid integer parameter (xstrtoll returned ${xstrtollCode(word)})`);
}

/** Parses an integer the way guestfish does; throws UsageError naming `what`. */
export function parseInteger(word: string, name: ArgumentName | string): bigint {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(?:([kKMGTPEZY])(iB|B)?)?$/.exec(word);
  if (!m) throw integerError(word, name, `'${word}' is not an integer ${INTEGER_HELP}`);
  const digits = m[2]!;
  let n: bigint;
  if (/^0[xX]/.test(digits)) n = BigInt(digits);
  else if (digits.length > 1 && digits.startsWith('0')) n = BigInt(`0o${digits.slice(1)}`);
  else n = BigInt(digits);
  if (m[3]) n *= (m[4] === 'B' ? 1000n : 1024n) ** BigInt(SUFFIX_POWER[m[3]]!);
  if (m[1] === '-') n = -n;
  if (n < INT64_MIN || n > INT64_MAX) throw integerError(word, name, `'${word}' is out of range for a 64-bit integer`);
  return n;
}

export function parseBool(word: string, what: string): boolean {
  const w = word.toLowerCase();
  if (['1', 'true', 't', 'yes', 'y', 'on'].includes(w)) return true;
  if (['0', 'false', 'f', 'no', 'n', 'off'].includes(w)) return false;
  throw new UsageError(`${what}: '${word}' is not a boolean (true/false, yes/no, on/off, 1/0)`);
}

/** libguestfs's Int is a signed 31-bit-range integer in guestfish's checks. */
function int32(word: string, name: ArgumentName): number {
  const n = parseInteger(word, name);
  if (n < -(2n ** 31n) || n > 2n ** 31n - 1n) {
    throw new ArgumentError(`${name.what}: ${word}: integer out of range`, `${name.command}: ${name.arg}: integer out of range`);
  }
  return Number(n);
}

/**
 * Splits a StringList word into items: blanks separate items, single quotes
 * group (and may be embedded: a'b c'd is one item "ab cd"), \' is a literal
 * quote. An unbalanced quote is an error.
 */
export function parseStringList(word: string, what = 'string list'): string[] {
  const items: string[] = [];
  let i = 0;
  const n = word.length;
  while (i < n) {
    while (i < n && (word[i] === ' ' || word[i] === '\t')) i++;
    if (i >= n) break;
    let tok = '';
    let inQuote = false;
    while (i < n && (inQuote || (word[i] !== ' ' && word[i] !== '\t'))) {
      const c = word[i]!;
      if (c === "'") {
        if (tok.endsWith('\\') && !inQuote) {
          tok = `${tok.slice(0, -1)}'`;
          i++;
          continue;
        }
        if (inQuote && tok.endsWith('\\')) {
          tok = `${tok.slice(0, -1)}'`;
          i++;
          continue;
        }
        inQuote = !inQuote;
        i++;
        continue;
      }
      tok += c;
      i++;
    }
    if (inQuote) throw new UsageError(`${what}: runaway quote in string "${word}"`);
    items.push(tok);
  }
  return items;
}

export function kindName(a: ArgSpec | OptArgSpec): string {
  switch (a.kind) {
    case 'String':
      return a.sub === 'PlainString' ? 'string' : a.sub;
    case 'StringList':
      return a.sub === 'PlainString' ? 'string list' : `${a.sub} list`;
    case 'OptString':
      return 'string or empty for NULL';
    case 'Int':
    case 'OInt':
      return '32-bit integer';
    case 'Int64':
    case 'OInt64':
      return '64-bit integer';
    case 'Bool':
    case 'OBool':
      return 'true|false';
    case 'BufferIn':
      return 'buffer';
    case 'OString':
      return 'string';
    case 'OStringList':
      return 'string list';
    case 'Pointer':
      return 'pointer';
  }
}

function parseArg(action: string, a: ArgSpec, word: string): ArgValue {
  const what = `${action}: argument '${a.name}' (${kindName(a)})`;
  const name: ArgumentName = { what, command: kebab(action), arg: a.name };
  switch (a.kind) {
    case 'Bool':
      return parseBool(word, what);
    case 'Int':
      return int32(word, name);
    case 'Int64':
      return parseInteger(word, name);
    case 'OptString':
      return word === '' ? null : word;
    case 'StringList':
      return parseStringList(word, what);
    case 'String':
    case 'BufferIn':
      return word;
    case 'Pointer':
      throw new UsageError(`${what} cannot be given on a command line`);
  }
}

function parseOptArg(action: string, o: OptArgSpec, word: string): ArgValue {
  const what = `${action}: optional argument '${o.name}' (${kindName(o)})`;
  const name: ArgumentName = { what, command: kebab(action), arg: o.name };
  switch (o.kind) {
    case 'OBool':
      return parseBool(word, what);
    case 'OInt':
      return int32(word, name);
    case 'OInt64':
      return parseInteger(word, name);
    case 'OString':
      return word;
    case 'OStringList':
      return parseStringList(word, what);
  }
}

export function kebab(name: string): string {
  return name.replaceAll('_', '-');
}

/** guestfish-style synopsis: `mkfs fstype device [blocksize:N] [features:..] ...`. */
export function signature(action: ActionSpec): string {
  const req = action.args.map((a) => a.name);
  const opt = action.optargs.map((o) => {
    const v = o.kind === 'OBool' ? 'true|false' : o.kind === 'OInt' || o.kind === 'OInt64' ? 'N' : '..';
    return `[${o.name}:${v}]`;
  });
  return [kebab(action.name), ...req, ...opt].join(' ');
}

export function parseCommandArgs(action: ActionSpec, words: readonly string[]): { args: ArgValue[]; optargs: OptArgs } {
  const n = action.args.length;
  const max = n + action.optargs.length;
  if (words.length < n || words.length > max) {
    const want = action.optargs.length ? `${n} to ${max}` : `${n}`;
    throw new UsageError(`${kebab(action.name)}: expects ${want} argument(s), got ${words.length}; usage: ${signature(action)}`);
  }
  const args = action.args.map((a, i) => parseArg(action.name, a, words[i]!));
  const optargs: OptArgs = {};
  for (const word of words.slice(n)) {
    // Names are matched as prefixes "name:" like guestfish does.
    const o = action.optargs.find((x) => word.startsWith(`${x.name}:`));
    if (!o) {
      const names = action.optargs.map((x) => `${x.name}:`).join(' ');
      throw new UsageError(`${kebab(action.name)}: unknown optional argument "${word}" (accepted: ${names})`);
    }
    if (optargs[o.name] !== undefined) throw new UsageError(`${kebab(action.name)}: optional argument "${o.name}" given more than once`);
    optargs[o.name] = parseOptArg(action.name, o, word.slice(o.name.length + 1));
  }
  return { args, optargs };
}
