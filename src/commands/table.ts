// The shell's command table: guestsh's own commands (guestfish's "fish
// commands") as entries, and the one way a command name is resolved, to a
// meta-command or a libguestfs action. Dispatch, `help`, `help --list`, tab
// completion and the command line's pre-launch check all go through
// resolveCommand, so a name one of them knows, all of them know.
//
// Names are matched ignoring case, with - and _ the same (guestfish's rule:
// list-devices, list_devices and LIST-DEVICES are one command; mkswap-L has
// capitals). Actions answer to their name, the generator's compatibility
// aliases (add-drive-opts) and guestfish's aliases (add, run, mkswap-L).

import { rmSync } from 'node:fs';
import { spec, suggestActions } from '../spec/index.js';
import type { ActionSpec } from '../spec/types.js';
import { UsageError } from '../runtime/errors.js';
import { encodeArgs } from '../runtime/protocol/codec.js';
import { CommandFailed, type CommandContext, type MetaCommand, type ParamKind } from './context.js';
import { expandArguments } from './glob.js';
import { actionHelp, commandList, HELP_GUIDE, metaHelp } from './help.js';
import { notSupported } from '../runtime/session/action-policy.js';
import { edit, editorFor, hexedit, view } from './host-files.js';
import { ArgumentError, kebab, parseCommandArgs, parseInteger } from './parse.js';

const ANY = Infinity;

async function supported(ctx: CommandContext): Promise<void> {
  const groups = await ctx.g.availableAllGroups();
  const width = Math.max(0, ...groups.map((g) => g.length));
  let text = '';
  for (const g of groups) {
    let yes = false;
    try {
      yes = (await ctx.internal.internalFeatureAvailable(g)) === 0;
    } catch {
      yes = false;
    }
    text += `${g.padStart(width)} ${yes ? 'yes' : 'no'}\n`;
  }
  await ctx.write(text);
}

/** alloc / sparse: a new raw image, added as the next drive (removed again if it cannot be added). */
async function newImage(ctx: CommandContext, file: string, size: string, sparse: boolean): Promise<void> {
  const bytes = parseInteger(size, 'size');
  if (bytes < 0n) throw new UsageError(`${size}: size must not be negative`);
  await ctx.g.diskCreate(file, 'raw', bytes, { preallocation: sparse ? 'sparse' : 'full' });
  try {
    await ctx.session.addDrive(file, { format: 'raw' });
  } catch (e) {
    rmSync(file, { force: true });
    throw e;
  }
}

function elapsed(t0: bigint): string {
  const us = (process.hrtime.bigint() - t0) / 1000n;
  return `elapsed time: ${us / 1000000n}.${String((us / 10000n) % 100n).padStart(2, '0')} seconds\n`;
}

const meta = (
  name: string,
  aliases: string[],
  synopsis: string,
  summary: string,
  params: ParamKind[],
  arity: [number, number],
  run: MetaCommand['run'],
): MetaCommand => ({ name, aliases, synopsis, summary, params, arity, run });

/** guestsh's own commands, in the order `help --list` shows them. */
export const META_COMMANDS: readonly MetaCommand[] = [
  meta('help', [], 'help [cmd] | help -l', 'a short guide; -l lists every command; help CMD shows one', ['command'], [0, 1], async (ctx, [name]) => {
    await ctx.write(name === undefined ? HELP_GUIDE : name === '--list' || name === '-l' || name === '-h' ? listCommands() : helpFor(name));
  }),
  meta('quit', ['exit', 'q'], 'quit', 'quit the shell (also exit, q, Ctrl-D)', [], [0, 0], async (ctx) => ctx.quit()),
  meta('echo', [], 'echo [params ...]', 'print the parameters', ['none'], [0, ANY], (ctx, args) => ctx.write(`${args.join(' ')}\n`)),
  meta('glob', [], 'glob command args...', 'expand wildcards in guest paths and devices, run the command for each combination', ['command-line'], [1, ANY],
    async (ctx, [name, ...args]) => {
      let failed = false;
      for (const combo of await expandArguments(ctx, args)) if (!(await ctx.issue(name!, combo))) failed = true;
      if (failed) throw new CommandFailed('glob: some commands failed');
    }),
  meta('time', [], 'time command args...', 'run a command and print the elapsed time', ['command-line'], [1, ANY], async (ctx, [name, ...args]) => {
    const t0 = process.hrtime.bigint();
    if (!(await ctx.issue(name!, args))) throw new CommandFailed('time: the command failed');
    await ctx.write(elapsed(t0));
  }),
  meta('lcd', [], 'lcd directory', 'change the host working directory', ['host'], [1, 1], async (_ctx, [dir]) => {
    try {
      process.chdir(dir!);
    } catch (e) {
      throw new CommandFailed(`${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }),
  meta('copy-in', [], 'copy-in local [local ...] remotedir', 'copy host files or directories into the guest', ['host', 'host-or-guest'], [2, ANY],
    async (ctx, args) => {
      const remote = args.at(-1)!;
      for (const local of args.slice(0, -1)) await ctx.g.copyIn(local, remote);
    }),
  meta('copy-out', [], 'copy-out remote [remote ...] localdir', 'copy guest files or directories to the host', ['guest', 'host-or-guest'], [2, ANY],
    async (ctx, args) => {
      const local = args.at(-1)!;
      for (const remote of args.slice(0, -1)) await ctx.g.copyOut(remote, local);
    }),
  meta('edit', ['vi', 'emacs'], 'edit filename', 'edit a guest file with $EDITOR (vi, emacs: with that editor)', ['guest'], [1, 1],
    (ctx, [file], calledAs) => edit(ctx, file!, editorFor(calledAs))),
  meta('more', ['less'], 'more filename', 'view a guest file with $PAGER (less: with less)', ['guest'], [1, 1],
    (ctx, [file], calledAs) => view(ctx, file!, calledAs === 'less' ? 'less' : (process.env.PAGER ?? 'more'))),
  meta('display', [], 'display filename', 'show a guest image file with $GUESTFISH_DISPLAY_IMAGE (default display)', ['guest'], [1, 1],
    (ctx, [file]) => view(ctx, file!, process.env.GUESTFISH_DISPLAY_IMAGE ?? 'display')),
  meta('hexedit', [], 'hexedit <filename|device> [max | start max]', 'edit bytes of a guest file or device with $HEXEDITOR (default hexedit)', ['guest', 'none', 'none'], [1, 3],
    (ctx, [file, ...range]) => hexedit(ctx, file!, range)),
  meta('supported', [], 'supported', 'list optional feature groups and whether the appliance has them', [], [0, 0], supported),
  meta('commit', [], 'commit', 'merge the changes so far into the images, then carry on in a fresh session', [], [0, 0],
    (ctx) => ctx.replaceSession('commit')),
  meta('discard', [], 'discard', 'throw the changes so far away, then carry on in a fresh session', [], [0, 0], (ctx) => ctx.replaceSession('discard')),
  meta('reopen', [], 'reopen', 'close the session and open a new, empty one with the same settings', [], [0, 0], (ctx) => ctx.replaceSession('reopen')),
  meta('setenv', [], 'setenv VAR value', 'set a host environment variable', ['none'], [2, 2], async (_ctx, [name, value]) => {
    process.env[name!] = value!;
  }),
  meta('unsetenv', [], 'unsetenv VAR', 'unset a host environment variable', ['none'], [1, 1], async (_ctx, [name]) => {
    delete process.env[name!];
  }),
  meta('alloc', ['allocate'], 'alloc filename size', 'create a fully allocated raw image and add it (also allocate)', ['host', 'none'], [2, 2],
    (ctx, [file, size]) => newImage(ctx, file!, size!, false)),
  meta('sparse', [], 'sparse filename size', 'create a sparse raw image and add it', ['host', 'none'], [2, 2],
    (ctx, [file, size]) => newImage(ctx, file!, size!, true)),
  meta('event', [], 'event name eventset "shell script ..."', 'run a host shell command each time one of the events fires (eventset: names separated by commas, or *)',
    ['none', 'none', 'none'], [3, 3], async (ctx, [name, events, command]) => ctx.events.add(name!, events!, command!)),
  meta('list-events', [], 'list-events', 'list the event handlers', [], [0, 0], (ctx) => ctx.write(ctx.events.list())),
  meta('delete-event', [], 'delete-event name', 'delete the event handlers registered under a name', ['none'], [1, 1], async (ctx, [name]) => ctx.events.delete(name!)),
  meta('man', ['manual'], 'man', "guestsh's manual: the guide, the options and the verbs (also manual)", [], [0, 0], async (ctx) => ctx.write(ctx.manual())),
];

export type Command =
  | { kind: 'meta'; command: MetaCommand; calledAs: string }
  | { kind: 'action'; action: ActionSpec };

/** The spelling a command name is looked up by. */
export function commandKey(name: string): string {
  return name.replace(/_/g, '-').toLowerCase();
}

/** Actions the shell offers: guestfish's public and debug ones. */
function inShell(a: ActionSpec): boolean {
  return a.visibility === 'VPublic' || a.visibility === 'VDebug';
}

/** Every spelling of a command as the table and the spec write it, by lookup key. */
const byKey = new Map<string, { spelling: string; command: Command }>();
function index(spelling: string, command: Command): void {
  const key = commandKey(spelling);
  const prev = byKey.get(key);
  if (prev && prev.command !== command) throw new Error(`command table: '${spelling}' names two commands`);
  if (!prev) byKey.set(key, { spelling, command });
}
for (const m of META_COMMANDS) for (const n of [m.name, ...m.aliases]) index(n, { kind: 'meta', command: m, calledAs: n });
const shellActions = spec.actions.filter(inShell).sort((x, y) => (x.name < y.name ? -1 : 1));
for (const a of shellActions) {
  const command: Command = { kind: 'action', action: a };
  for (const n of [a.name, ...a.nonCAliases, ...a.fishAlias]) index(kebab(n), command);
}

/** The command a name means, or null when there is none. */
export function resolveCommand(name: string): Command | null {
  return byKey.get(commandKey(name))?.command ?? null;
}

/** The error for a name that is no command, with the closest actions. */
function unknownCommand(name: string): UsageError {
  const near = suggestActions(name);
  return new ArgumentError(`unknown command '${name}'${near.length ? `; did you mean ${near.join(', ')}?` : ''}`, `${name}: unknown command`);
}

/** Like resolveCommand, but a name that cannot run is an error saying why. */
export function commandOrThrow(name: string): Command {
  const c = resolveCommand(name);
  if (!c) throw unknownCommand(name);
  return c;
}

/** Every name completion offers (each spelling of every command), sorted. */
const COMMAND_NAMES: readonly string[] = [...byKey.values()]
  .map((e) => e.spelling)
  .sort();

/** Command names starting with `prefix` (ignoring case, - and _ alike). */
export function commandsStartingWith(prefix: string): string[] {
  const p = commandKey(prefix);
  return COMMAND_NAMES.filter((n) => commandKey(n).startsWith(p));
}

/** A meta-command's parameter count, checked before it runs. */
export function checkArity(m: MetaCommand, calledAs: string, args: readonly string[]): void {
  const [min, max] = m.arity;
  if (args.length >= min && args.length <= max) return;
  const want = min === max ? `${min}` : max === ANY ? `at least ${min}` : `${min} to ${max}`;
  throw new UsageError(`${calledAs}: expects ${want} parameter(s), got ${args.length}; usage: ${m.synopsis}`);
}

/** How the index-th parameter of a meta-command completes. */
export function paramKind(m: MetaCommand, index: number): ParamKind {
  if (index >= m.arity[1] || m.params.length === 0) return 'none';
  return m.params[Math.min(index, m.params.length - 1)]!;
}

/**
 * Checks a command's words without running anything: the name, and the
 * parameter count (meta-commands) or every argument's type (actions). The
 * command line is checked this way before the appliance boots.
 */
/** Checks a command line's commands before any runs; a `-cmd` may fail on purpose, so it is not checked. */
export function checkCommandLine(commands: readonly (readonly string[])[]): void {
  for (const words of commands) if (!words[0]!.startsWith('-')) checkCommand(words);
}

export function checkCommand(words: readonly string[]): void {
  const [name, ...args] = words;
  const c = commandOrThrow(name!);
  if (c.kind === 'action') {
    // The codec's checks too (formats such as GUIDs), so a bad argument
    // fails before the appliance boots, not after.
    const parsed = parseCommandArgs(c.action, args);
    encodeArgs(c.action, parsed.args, parsed.optargs);
    return;
  }
  checkArity(c.command, c.calledAs, args);
  if (paramKind(c.command, 0) === 'command-line') commandOrThrow(args[0]!);
}

/** `help -l` / `help --list`. */
export function listCommands(): string {
  return commandList(META_COMMANDS, shellActions, notSupported);
}

/** `help CMD`; an error when CMD is not a command guestsh has. */
export function helpFor(name: string): string {
  const c = resolveCommand(name);
  if (!c) throw new UsageError(`${name}: command not known: use 'help --list' to list all commands`);
  return c.kind === 'meta' ? metaHelp(c.command) : actionHelp(c.action, notSupported[c.action.name]);
}
