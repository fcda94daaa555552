// What a shell meta-command is (one entry of the command table) and what it
// may use of the interpreter running it. The interpreter (src/repl) provides
// the context; commands never reach into the shell itself.

import type { Session } from '../runtime/session/session.js';
import type { EventHandlers } from './events.js';
import type { GuestfsApi, GuestfsInternalApi } from '../spec/api.js';

/** A command that failed for a reason the user can act on (not a guestfs error, not bad syntax). */
export class CommandFailed extends Error {
  override name = 'CommandFailed';
}

/** How the interactive prompt completes one parameter of a meta-command. */
export type ParamKind =
  | 'none'
  /** a host file or directory */
  | 'host'
  /** a guest path */
  | 'guest'
  /** a guest path when the word starts with / (and not /dev/), else a host path (copy-in/copy-out) */
  | 'host-or-guest'
  /** a command name (help CMD) */
  | 'command'
  /** the rest of the line is a command of its own (glob, time) */
  | 'command-line';

export interface CommandContext {
  /** The session commands run against (a new one after commit, discard or reopen). */
  readonly session: Session;
  /** Writes to the command's output: stdout, or the pipeline it feeds. */
  write(data: string | Uint8Array): Promise<void>;
  /** The actions, typed, called as a typed command calls them: cancellable with Ctrl-C, with a progress bar. */
  readonly g: GuestfsApi;
  /** The internal actions (feature probes), called the same way. */
  readonly internal: GuestfsInternalApi;
  /** Runs another command (glob, time); false when it failed, after reporting why. */
  issue(name: string, args: string[]): Promise<boolean>;
  /** The shell's `event` handlers (they follow the session across commit and discard; reopen clears them). */
  readonly events: EventHandlers;
  /** guestsh's manual (`man`): the guide and the command line's options and verbs, which the shell's layer knows. */
  manual(): string;
  /** Ends the shell after this command. */
  quit(): void;
  /**
   * Ends the session and goes on in a new one: `commit` keeps the changes,
   * `discard` drops them (both reopen the same images, mounted as before),
   * `reopen` starts empty with the same settings.
   */
  replaceSession(how: 'commit' | 'discard' | 'reopen'): Promise<void>;
}

/** One of guestsh's own commands (guestfish's "fish commands"): an entry of the command table. */
export interface MetaCommand {
  name: string;
  /** Other names it answers to; `run` learns which one was typed. */
  aliases: readonly string[];
  synopsis: string;
  summary: string;
  /** Completion of each parameter; past the end, the last kind repeats when `arity` allows more. */
  params: readonly ParamKind[];
  /** Fewest and most parameters (Infinity: any number). */
  arity: readonly [min: number, max: number];
  run(ctx: CommandContext, args: string[], calledAs: string): Promise<void>;
}
