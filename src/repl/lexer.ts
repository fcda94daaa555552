// guestfish's line syntax, one line at a time (there is no line continuation):
//
//   # comment                 the whole line is ignored
//   !host command             run by /bin/sh; a non-zero exit is an error
//   <!host command            run by /bin/sh; its output lines are executed as commands
//   -cmd args                 like cmd, but a failure does not stop the script
//   cmd args | host pipeline  cmd's output goes to the pipeline's stdin
//
// The command name is the first blank-delimited word (never quoted).
// Arguments are blank-delimited; "double quotes" take C-like escapes
// (\n \t \\ \" \xHH \NNN ...), 'single quotes' take none, a closing quote
// must be followed by a blank or the end of the line. A bare word starting
// with ~ gets ~ / ~user expanded to a home directory.

import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';

export class ParseError extends Error {
  override name = 'ParseError';
}

export type ParsedLine =
  | { type: 'none' }
  | { type: 'host'; command: string; continueOnError: boolean }
  | { type: 'inline'; command: string; continueOnError: boolean }
  | { type: 'command'; name: string; args: string[]; pipe: string | null; continueOnError: boolean };

const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';
const isSpace = (c: string | undefined): boolean => c !== undefined && /\s/.test(c);

function unescapeDouble(s: string, start: number): { value: string; end: number } {
  let out = '';
  let i = start;
  for (; i < s.length && s[i] !== '"'; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = s[i + 1];
    const simple: Record<string, string> = { '\\': '\\', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '"': '"', "'": "'", '?': '?' };
    if (n !== undefined && simple[n] !== undefined) {
      out += simple[n];
      i += 1;
    } else if (n !== undefined && n >= '0' && n <= '7') {
      const oct = s.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) < 1 || parseInt(oct, 8) > 255) {
        throw new ParseError(`invalid escape sequence in string (starting at offset ${i - start})`);
      }
      out += String.fromCharCode(parseInt(oct, 8));
      i += 3;
    } else if (n === 'x') {
      const hex = s.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex) || parseInt(hex, 16) < 1) {
        throw new ParseError(`invalid escape sequence in string (starting at offset ${i - start})`);
      }
      out += String.fromCharCode(parseInt(hex, 16));
      i += 3;
    } else {
      throw new ParseError(`invalid escape sequence in string (starting at offset ${i - start})`);
    }
  }
  if (i >= s.length) throw new ParseError('unterminated double quote');
  return { value: out, end: i };
}

function homeOf(user: string): string | null {
  try {
    if (user === userInfo().username) return userInfo().homedir;
  } catch {
    // no passwd entry for the current uid
  }
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === user && f[5]) return f[5];
    }
  } catch {
    // no /etc/passwd
  }
  return null;
}

/** ~, ~/x, ~user, ~user/x → home directories; anything else unchanged. */
export function expandTilde(word: string): string {
  if (!word.startsWith('~')) return word;
  const slash = word.indexOf('/');
  const user = slash < 0 ? word.slice(1) : word.slice(1, slash);
  const rest = slash < 0 ? '' : word.slice(slash);
  if (user === '') return (process.env.HOME ?? homedir()) + rest;
  const h = homeOf(user);
  return h === null ? word : h + rest;
}

/**
 * Parses one line. Characters are treated as JS string units; guestsh reads
 * scripts as UTF-8 and "\xHH" escapes produce the code point U+00HH, which
 * is sent as UTF-8 (guestfish would send the raw byte).
 */
export function parseLine(line: string, continueOnErrorIn = false): ParsedLine {
  let continueOnError = continueOnErrorIn;
  let p = 0;
  for (;;) {
    while (p < line.length && isSpace(line[p])) p++;
    if (p >= line.length || line[p] === '#') return { type: 'none' };
    if (line[p] === '!') return { type: 'host', command: line.slice(p + 1), continueOnError };
    if (line.startsWith('<!', p)) return { type: 'inline', command: line.slice(p + 2), continueOnError };
    if (line[p] === '-') {
      continueOnError = true;
      p++;
      continue;
    }
    break;
  }
  let end = p;
  while (end < line.length && !isBlank(line[end])) end++;
  const name = line.slice(p, end);
  const args: string[] = [];
  let pipe: string | null = null;
  p = end;
  while (p < line.length && isBlank(line[p])) p++;
  while (p < line.length) {
    const c = line[p]!;
    if (c === '"' || c === "'") {
      let value: string;
      let close: number;
      if (c === '"') {
        ({ value, end: close } = unescapeDouble(line, p + 1));
      } else {
        close = line.indexOf("'", p + 1);
        if (close < 0) throw new ParseError('unterminated single quote');
        value = line.slice(p + 1, close);
      }
      if (close + 1 < line.length && !isBlank(line[close + 1])) throw new ParseError('command arguments not separated by whitespace');
      args.push(value);
      p = close + 1;
    } else if (c === '|') {
      pipe = line.slice(p + 1);
      break;
    } else {
      let e = p;
      while (e < line.length && !isBlank(line[e])) e++;
      const word = line.slice(p, e);
      args.push(word.startsWith('~') ? expandTilde(word) : word);
      p = e;
    }
    while (p < line.length && isBlank(line[p])) p++;
  }
  return { type: 'command', name, args, pipe, continueOnError };
}
