// Tab completion for the interactive shell: command names; optional-argument
// names (`format:`) of the command being typed; devices, partitions, LVs and
// mountables for Device-like arguments; live guest paths (directories get a
// trailing /) for Pathname arguments; host paths for FileIn/FileOut and
// host-side arguments of meta-commands.
//
// Guest directories are listed with one readdir call (names and types
// together) and cached per directory, so completing in a large directory
// costs one round trip the first time and a map lookup afterwards. The cache
// is dropped after every command the user runs (it may have changed the
// guest).

import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ActionSpec } from '../spec/types.js';
import type { ParamKind } from '../commands/context.js';
import { commandsStartingWith, paramKind, resolveCommand } from '../commands/table.js';
import { deviceNames } from '../commands/glob.js';
import type { Session } from '../runtime/session/session.js';
import { expandTilde } from './lexer.js';

interface Entry {
  name: string;
  dir: boolean;
}

/** What a word completes to: a meta-command parameter's kind, or what an action argument's kind needs. */
type ArgCompletion = Exclude<ParamKind, 'host-or-guest' | 'command-line'> | 'device' | 'device-or-guest';

/** Words of a partial line: the finished ones and the one under the cursor (quotes removed). */
export function splitPartial(line: string): { words: string[]; current: string } {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  return { words, current: cur };
}

function argKind(action: ActionSpec, index: number): ArgCompletion {
  const a = action.args[index];
  if (!a) return 'none';
  if (a.kind !== 'String' && a.kind !== 'StringList') return 'none';
  switch (a.sub) {
    case 'Device':
    case 'Mountable':
      return 'device';
    case 'Dev_or_Path':
    case 'Mountable_or_Path':
      return 'device-or-guest';
    case 'Pathname':
      return 'guest';
    case 'FileIn':
    case 'FileOut':
      return 'host';
    default:
      return 'none';
  }
}

/** A host-or-guest parameter (copy-in/copy-out) is a guest path once the word looks like one. */
function hostOrGuest(current: string): ArgCompletion {
  return current.startsWith('/') && !current.startsWith('/dev/') ? 'guest' : 'host';
}

export class Completer {
  private dirCache = new Map<string, Entry[]>();
  private devCache: string[] | null = null;
  constructor(private readonly getSession: () => Session) {}

  /** Forget what was listed (after a command ran). */
  invalidate(): void {
    this.dirCache.clear();
    this.devCache = null;
  }

  /** readline's completer contract: [candidates, the text they replace]. */
  async complete(line: string): Promise<[string[], string]> {
    const t0 = process.hrtime.bigint();
    const r = await this.completeInner(line);
    logTiming(`complete ${line}`, 'total', t0, r[0].length);
    return r;
  }

  private async completeInner(line: string): Promise<[string[], string]> {
    const { words, current } = splitPartial(line);
    if (words.length === 0) {
      const prefix = current.replace(/^-+/, '');
      return [commandsStartingWith(prefix), prefix];
    }
    const command = resolveCommand(words[0]!.replace(/^-+/, ''));
    const index = words.length - 1;
    let kind: ArgCompletion;
    if (command?.kind === 'action') {
      const action = command.action;
      if (index >= action.args.length) return [this.optargNames(action, words.slice(1 + action.args.length), current), current];
      kind = argKind(action, index);
    } else if (command?.kind === 'meta') {
      const param = paramKind(command.command, index);
      // glob/time: the rest of the line is a command of its own.
      if (param === 'command-line') return this.completeInner(line.replace(/^\s*-?\s*\S+\s+/, ''));
      kind = param === 'host-or-guest' ? hostOrGuest(current) : param;
    } else return [[], current];
    switch (kind) {
      case 'command':
        return [commandsStartingWith(current), current];
      case 'device':
        return [(await this.devices()).filter((d) => d.startsWith(current)), current];
      case 'device-or-guest':
        if (current.startsWith('/dev/') || (current !== '' && '/dev/'.startsWith(current) && current.length > 1)) {
          return [(await this.devices()).filter((d) => d.startsWith(current)), current];
        }
        return [await this.guestPaths(current), current];
      case 'guest':
        return [await this.guestPaths(current), current];
      case 'host':
        return [hostPaths(current), current];
      default:
        return [[], current];
    }
  }

  private optargNames(action: ActionSpec, given: string[], current: string): string[] {
    const used = new Set(given.map((w) => w.split(':')[0]));
    return action.optargs
      .map((o) => `${o.name}:`)
      .filter((n) => !used.has(n.slice(0, -1)) && n.startsWith(current));
  }

  /** Devices, partitions, LVs, md devices and every mountable filesystem. */
  async devices(): Promise<string[]> {
    if (this.devCache) return this.devCache;
    const s = this.getSession();
    if (s.state !== 'ready') return [];
    const all = new Set<string>();
    try {
      for (const d of await deviceNames(s.g)) all.add(d);
      for (const d of Object.keys(await s.g.listFilesystems())) all.add(d);
    } catch {
      // a broken appliance: complete nothing rather than fail the keystroke
    }
    this.devCache = [...all].sort();
    return this.devCache;
  }

  /** Entries of a guest directory (cached), or [] when it cannot be listed. */
  async listGuestDir(dir: string): Promise<Entry[]> {
    const t0 = process.hrtime.bigint();
    const hit = this.dirCache.get(dir);
    if (hit) {
      logTiming(dir, 'cached', t0, hit.length);
      return hit;
    }
    const s = this.getSession();
    if (s.state !== 'ready') return [];
    let entries: Entry[] = [];
    try {
      const dirents = await s.g.readdir(dir);
      entries = dirents.filter((d) => d.name !== '.' && d.name !== '..').map((d) => ({ name: d.name, dir: d.ftyp === 'd' }));
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch {
      entries = [];
    }
    this.dirCache.set(dir, entries);
    logTiming(dir, 'listed', t0, entries.length);
    return entries;
  }

  async guestPaths(current: string): Promise<string[]> {
    if (!current.startsWith('/')) return current === '' ? ['/'] : [];
    const slash = current.lastIndexOf('/');
    const dir = slash === 0 ? '/' : current.slice(0, slash);
    const prefix = current.slice(slash + 1);
    const base = dir === '/' ? '/' : `${dir}/`;
    const out: string[] = [];
    for (const e of await this.listGuestDir(dir)) {
      if (e.name.startsWith(prefix)) out.push(`${base}${e.name}${e.dir ? '/' : ''}`);
    }
    return out;
  }
}

/** GUESTSH_COMPLETION_LOG=FILE records each guest directory lookup (for latency tests). */
function logTiming(dir: string, how: string, t0: bigint, n: number): void {
  const file = process.env.GUESTSH_COMPLETION_LOG;
  if (!file) return;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  try {
    appendFileSync(file, `${JSON.stringify({ dir, how, ms, entries: n })}\n`);
  } catch {
    // logging is best effort
  }
}

/** Host files and directories (directories with a trailing /). */
export function hostPaths(current: string): string[] {
  const expanded = expandTilde(current);
  const slash = expanded.lastIndexOf('/');
  const dir = slash < 0 ? '.' : slash === 0 ? '/' : expanded.slice(0, slash);
  const prefix = slash < 0 ? expanded : expanded.slice(slash + 1);
  const shownBase = slash < 0 ? '' : current.slice(0, current.lastIndexOf('/') + 1);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names.sort()) {
    if (!n.startsWith(prefix) || (prefix === '' && n.startsWith('.'))) continue;
    let isDir = false;
    try {
      isDir = statSync(join(dir, n)).isDirectory();
    } catch {
      // dangling symlink
    }
    out.push(`${shownBase}${n}${isDir ? '/' : ''}`);
  }
  return out;
}
