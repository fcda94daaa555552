// One name, one command: every spelling of every action in the spec and of
// every meta-command goes through the four places that look command names
// up (the interpreter's dispatch, help, tab completion and the command
// line's pre-launch check), which must agree on what it names. No appliance:
// the session is a stand-in that records which action a call reached.

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { spec } from '../../src/spec/index.js';
import { kebab } from '../../src/commands/parse.js';
import { checkCommand, commandKey, helpFor, META_COMMANDS, resolveCommand, type Command } from '../../src/commands/table.js';
import { Completer } from '../../src/repl/completion.js';
import { Shell } from '../../src/repl/shell.js';
import type { Session } from '../../src/runtime/session/session.js';

class Reached extends Error {
  constructor(readonly action: string) {
    super(`reached ${action}`);
  }
}

const fakeSession = {
  state: 'config',
  drives: [],
  settings: { verbose: false },
  call: async (name: string) => {
    throw new Reached(name);
  },
  on() {},
  off() {},
} as unknown as Session;

const shell = new Shell(fakeSession, { json: false, interactive: false, progress: false });
shell.out = new Writable({ write: (_c, _e, done) => done() });
const completer = new Completer(() => fakeSession);

/** What a command is, as one string: `action:NAME`, `meta:NAME` or `none`. */
function identity(c: Command | null): string {
  if (!c) return 'none';
  if (c.kind === 'action') return `action:${c.action.name}`;
  return `meta:${c.command.name}`;
}

/** Words that make the command fail before it does anything (or do something harmless). */
function probeArgs(c: Command | null): string[] {
  if (c?.kind === 'meta') return c.command.arity[1] === Infinity ? [] : Array.from({ length: c.command.arity[1] + 1 }, () => 'x');
  return [];
}

type Outcome = { ok: true; reached?: string } | { ok: false; message: string };

async function outcome(f: () => unknown): Promise<Outcome> {
  try {
    await f();
    return { ok: true };
  } catch (e) {
    if (e instanceof Reached) return { ok: true, reached: e.action };
    return { ok: false, message: (e as Error).message };
  }
}

/** What each place says a name is. */
async function viewsOf(name: string): Promise<{ dispatch: string; help: string; completion: boolean; check: string }> {
  const c = resolveCommand(name);
  const args = probeArgs(c);
  const classify = (o: Outcome): string =>
    o.ok ? (o.reached ? `reached:${o.reached}` : 'ran') : /^unknown command/.test(o.message) ? 'none' : `refused:${o.message}`;
  const dispatched = await outcome(() => shell.dispatch(name, args, null));
  const checked = await outcome(() => checkCommand([name, ...args]));
  let help: string;
  try {
    help = helpFor(name).split('\n')[0]!;
  } catch (e) {
    help = /command not known/.test((e as Error).message) ? 'none' : `error:${(e as Error).message}`;
  }
  const [candidates] = await completer.complete(name);
  return {
    dispatch: classify(dispatched),
    help,
    completion: candidates.map(commandKey).includes(commandKey(name)),
    // The pre-launch check stops where dispatch would call the appliance.
    check: checked.ok && dispatched.ok && dispatched.reached ? classify(dispatched) : classify(checked),
  };
}

/** Every name to try: each action's name and aliases, each meta-command's, in several spellings, and some non-names. */
function allNames(): string[] {
  const base = [
    ...spec.actions.flatMap((a) => [a.name, ...a.nonCAliases, ...a.fishAlias]),
    ...META_COMMANDS.flatMap((m) => [m.name, ...m.aliases]),
    'no-such-command', 'list-devics',
  ];
  return [...new Set(base.flatMap((n) => [n, kebab(n), n.replaceAll('-', '_'), n.toUpperCase()]))];
}

describe('command names', () => {
  it('every action and meta-command name resolves the same way in dispatch, help, completion and the pre-launch check', { timeout: 120_000 }, async () => {
    const disagreements: string[] = [];
    for (const name of allNames()) {
      const c = resolveCommand(name);
      const v = await viewsOf(name);
      const expected =
        c === null
          ? { dispatch: 'none', help: 'none', completion: false, check: 'none' }
          : c.kind === 'action'
            ? {
                // An action without arguments reaches the session; one with arguments is refused for their count, by name.
                dispatch: c.action.args.length ? v.dispatch : `reached:${c.action.name}`,
                help: v.help,
                completion: true,
                check: v.dispatch,
              }
            : { dispatch: v.dispatch, help: v.help, completion: true, check: v.dispatch };
      const sameThing =
        c === null
          ? true
          : c.kind === 'action'
            ? v.help.startsWith(kebab(c.action.name)) && (c.action.args.length === 0 || v.dispatch.includes(`${kebab(c.action.name)}: expects`))
            : v.help.startsWith(`${c.command.name}`) && (v.dispatch === 'ran' || v.dispatch.includes(`usage: ${c.command.synopsis}`));
      if (JSON.stringify(v) !== JSON.stringify(expected) || !sameThing) {
        disagreements.push(`${name} (${identity(c)}): ${JSON.stringify(v)}`);
      }
    }
    expect(disagreements).toEqual([]);
  });

  it('resolves guestfish aliases, generator aliases, case and - / _ alike', () => {
    expect(identity(resolveCommand('mkswap-L'))).toBe('action:mkswap_L');
    expect(identity(resolveCommand('MKSWAP_L'))).toBe('action:mkswap_L');
    expect(identity(resolveCommand('add-drive-opts'))).toBe('action:add_drive');
    expect(identity(resolveCommand('add'))).toBe('action:add_drive');
    expect(identity(resolveCommand('run'))).toBe('action:launch');
    expect(identity(resolveCommand('copy_in'))).toBe('meta:copy-in');
    expect(identity(resolveCommand('VI'))).toBe('meta:edit');
    expect(identity(resolveCommand('hexedit'))).toBe('meta:hexedit');
    expect(identity(resolveCommand('list_events'))).toBe('meta:list-events');
    expect(identity(resolveCommand('internal_test'))).toBe('none');
    expect(identity(resolveCommand('is_ready'))).toBe('none');
  });

  it('help mkswap-L prints its help', () => {
    expect(helpFor('mkswap-L')).toMatch(/^mkswap-L\n {2}mkswap-L label device\n/);
  });
});
