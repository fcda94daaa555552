// guestfish's `glob CMD ARGS...`: each argument that is a guest path or a
// device is expanded against the guest, and CMD runs once for every
// combination. Patterns are fnmatch(3) with FNM_PATHNAME: * and ? do not
// match '/', [...] classes with ranges and ! or ^ negation, backslash quotes
// the next character.

import type { GuestfsApi } from '../spec/api.js';
import type { CommandContext } from './context.js';

export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < glob.length) re += escape(glob[++i]!);
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      let neg = false;
      if (body[0] === '!' || body[0] === '^') {
        neg = true;
        body = body.slice(1);
      }
      re += `(?!/)[${neg ? '^' : ''}${body.replace(/[\\\]]/g, (m) => `\\${m}`)}]`;
      i = close;
    } else re += escape(c);
  }
  return new RegExp(`${re}$`);
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The device listings a /dev/ pattern is matched against (lvs may be missing: no LVM). */
const DEVICE_LISTS = ['listDevices', 'listPartitions', 'listMdDevices', 'lvs'] as const;

/** Every device, partition, md device and LV name, in listing order. */
export async function deviceNames(g: Pick<GuestfsApi, (typeof DEVICE_LISTS)[number]>): Promise<string[]> {
  const names: string[] = [];
  for (const lister of DEVICE_LISTS) {
    try {
      names.push(...(await g[lister]()));
    } catch (e) {
      if (lister !== 'lvs') throw e;
    }
  }
  return names;
}

/** What one argument expands to; a pattern matching nothing stays as written. */
async function expandWord(ctx: CommandContext, word: string): Promise<string[]> {
  if (word.startsWith('/dev/')) {
    const re = globToRegExp(word);
    const found = (await deviceNames(ctx.g)).filter((n) => re.test(n));
    return found.length ? found : [word];
  }
  if (word.startsWith('/')) {
    const found = await ctx.g.globExpand(word);
    return found.length ? found : [word];
  }
  return [word];
}

/** Every combination of the expanded arguments, in order (the last argument varies fastest). */
export async function expandArguments(ctx: CommandContext, words: readonly string[]): Promise<string[][]> {
  let combos: string[][] = [[]];
  for (const w of words) {
    const options = await expandWord(ctx, w);
    combos = combos.flatMap((c) => options.map((o) => [...c, o]));
  }
  return combos;
}
