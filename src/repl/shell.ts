// The command interpreter shared by scripts, the command line and the
// interactive prompt: guestfish's language (see lexer.ts), the command table's
// meta-commands and every libguestfs action the shell offers, printed as
// guestfish prints them.

import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { createApi, createInternalApi, type GuestfsApi, type GuestfsInternalApi } from '../spec/api.js';
import type { ActionSpec } from '../spec/types.js';
import type { ArgValue, OptArgs, RetValue } from '../spec/values.js';
import { ArgumentError, kebab, parseCommandArgs } from '../commands/parse.js';
import { CommandFailed, type CommandContext } from '../commands/context.js';
import { checkArity, commandOrThrow } from '../commands/table.js';
import { EventHandlers } from '../commands/events.js';
import { sh, waitExit, writeTo } from '../commands/host.js';
import { CancelledError, GuestfsError, UsageError } from '../runtime/errors.js';
import { Session, type CallTransfer } from '../runtime/session/session.js';
import { currentMounts, remount } from '../runtime/session/mounts.js';
import { formatJson, formatResult } from './format.js';
import { type LineSource, StringLineSource } from './input.js';
import { ParseError, parseLine } from './lexer.js';
import { ProgressBar } from './progress.js';
import { KeyReader } from './setup.js';
import { manual } from './options.js';

export interface ShellOptions {
  json: boolean;
  interactive: boolean;
  /** Show progress bars (stderr) for calls that report progress. */
  progress: boolean;
  /** The process's stop signal: a `commit` it arrives before does not commit. */
  signal?: AbortSignal | undefined;
  /**
   * How errors read on stderr. guestsh: `guestsh: SCRIPT:LINE: error: …`.
   * guestfish (guestsh called by that name): guestfish's own lines, which
   * scripts grep and compare: `SCRIPT:LINE: libguestfs: error: …` for a
   * failed call, `COMMAND: ARGUMENT: …` for a bad argument, `guestfish: …`
   * for a line that does not parse.
   */
  dialect?: Dialect | undefined;
  /** Reads a Key argument the command's words leave out (the CLI's, for --keys-from-stdin and --echo-keys). */
  keys?: KeyReader | undefined;
}

import type { Dialect } from './dialect.js';
export type { Dialect };

/** Errors that are a command's own failure, reported in one line (anything else also shows its stack with -v). */
const EXPECTED = [UsageError, GuestfsError, CancelledError, CommandFailed, ParseError];

export class Shell {
  out: Writable = process.stdout;
  /** Where errors go (a resident session points both at its client). */
  err: Writable = process.stderr;
  quit = false;
  /** Aborts the running call's transfer (Ctrl-C). */
  current: AbortController | null = null;
  /** Real stdin for FileIn "-" when commands come from the command line. */
  stdinSource: LineSource | null = null;
  /** The actions, typed, through this shell's call: cancellable, with progress, on whatever session is current. */
  readonly g: GuestfsApi = createApi(this);
  readonly internal: GuestfsInternalApi = createInternalApi(this);
  /** `event` handlers, on whichever session is current; their output goes where the shell's goes at that moment. */
  readonly events = new EventHandlers(() => ({ out: this.out, err: this.err }));

  /**
   * `makeSession(old, true)` is a fresh handle (the environment's settings,
   * as guestfish's reopen creates one), `false` the same session continued
   * (commit, discard: every setting kept).
   */
  constructor(
    public session: Session,
    readonly opts: ShellOptions,
    private readonly makeSession: (old: Session, fresh: boolean) => Session = (old, fresh) => {
      if (fresh) return new Session();
      // The old session's settings already hold what the environment set.
      const s = new Session({ env: {} });
      Object.assign(s.settings, old.settings);
      return s;
    },
  ) {
    this.events.attach(session);
  }

  /** Errors a call raised (the action ran and failed), as against the shell refusing the line first. */
  private readonly callErrors = new WeakSet<Error>();

  private report(src: LineSource | null, e: Error | string): void {
    const msg = typeof e === 'string' ? e : e.message;
    const where = src && !this.opts.interactive ? `${src.name}:${src.lineNo}: ` : '';
    if (this.opts.dialect !== 'guestfish') {
      this.err.write(`guestsh: ${where}error: ${msg}\n`);
    } else if (e instanceof ArgumentError) {
      this.err.write(`${e.guestfish}\n`);
    } else if (e instanceof Error && this.callErrors.has(e)) {
      // guestfish names a command-line command's failure as line 0 of its stdin.
      const at = src || this.opts.interactive ? where : '*stdin*:0: ';
      this.err.write(`${at}libguestfs: error: ${msg}\n`);
    } else {
      this.err.write(`guestfish: ${msg}\n`);
    }
  }

  /**
   * Runs every line of `src`. With exitOnError (scripts), the first failing
   * command stops the run; returns false if anything stopped it.
   */
  async runSource(src: LineSource, exitOnError: boolean): Promise<boolean> {
    while (!this.quit) {
      const line = await src.readLine();
      if (line === null) break;
      if (!(await this.runLine(line, src, exitOnError))) return false;
    }
    return true;
  }

  /**
   * Commands given as words (the command line's, split at ':'): the first
   * failing one stops the run unless its name starts with '-'; returns false
   * if one stopped it.
   */
  async runCommands(commands: readonly (readonly string[])[]): Promise<boolean> {
    for (const [name, ...args] of commands) {
      const continueOnError = name!.startsWith('-');
      const good = await this.issue(continueOnError ? name!.slice(1) : name!, args, null, null);
      if (!good && !continueOnError) return false;
      if (this.quit) break;
    }
    return true;
  }

  /** One line: returns false when it failed and the failure must stop the caller. */
  async runLine(line: string, src: LineSource, exitOnError: boolean): Promise<boolean> {
    let parsed;
    try {
      parsed = parseLine(line);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.report(src, e);
      // A leading "-" still says the script goes on, as in guestfish: it is read before the words.
      return !exitOnError || /^\s*-/.test(line);
    }
    const stop = exitOnError && !(parsed.type !== 'none' && parsed.continueOnError);
    switch (parsed.type) {
      case 'none':
        return true;
      case 'host': {
        const code = await waitExit(sh(parsed.command, 'inherit'));
        if (code !== 0) {
          this.report(src, `host command exited with status ${code}: ${parsed.command}`);
          return !stop;
        }
        return true;
      }
      case 'inline': {
        const child = sh(parsed.command, 'capture');
        const chunks: Buffer[] = [];
        child.stdout!.on('data', (c: Buffer) => chunks.push(c));
        const code = await waitExit(child);
        const inner = new StringLineSource(Buffer.concat(chunks).toString('utf8'), `<!${parsed.command}`);
        // Heredocs inside inlined commands still read from the outer input.
        while (!this.quit) {
          const l = await inner.readLine();
          if (l === null) break;
          if (!(await this.runLine(l, src, exitOnError))) return false;
        }
        if (code !== 0) {
          this.report(src, `command exited with status ${code}: ${parsed.command}`);
          return !stop;
        }
        return true;
      }
      case 'command': {
        const ok = await this.issue(parsed.name, parsed.args, parsed.pipe, src);
        return ok || !stop;
      }
    }
  }

  /** Runs one command (optionally into a host pipeline); reports errors; true on success. */
  async issue(name: string, args: string[], pipe: string | null, src: LineSource | null): Promise<boolean> {
    let child: ChildProcess | null = null;
    const savedOut = this.out;
    if (pipe !== null) {
      child = sh(pipe, 'pipe-in');
      child.stdin!.on('error', () => {
        // the pipeline may exit early (head); guestfish ignores that too
      });
      this.out = child.stdin!;
    }
    let ok = true;
    try {
      await this.dispatch(name, args, src);
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      ok = false;
      // Whatever fails inside one command (a host file, a broken appliance)
      // is that command's failure, not the shell's.
      this.report(src, e);
      // --json: the failure is that command's one line too.
      if (this.opts.json) await writeTo(this.out, `${JSON.stringify({ error: e.message, command: name })}\n`).catch(() => {});
      if (!EXPECTED.some((c) => e instanceof c) && this.session.settings.verbose && e.stack) this.err.write(`${e.stack}\n`);
    } finally {
      if (child) {
        this.out = savedOut;
        child.stdin!.end();
        await waitExit(child);
      }
    }
    return ok;
  }

  /** Executes a command; throws on failure. */
  async dispatch(name: string, args: string[], src: LineSource | null): Promise<void> {
    const command = commandOrThrow(name);
    if (command.kind === 'action') return this.runAction(command.action, args, src);
    checkArity(command.command, command.calledAs, args);
    await command.command.run(this.context(src), args, command.calledAs);
  }

  /** What meta-commands get to work with. */
  private context(src: LineSource | null): CommandContext {
    const shell = this;
    return {
      get session() {
        return shell.session;
      },
      write: (data) => writeTo(this.out, data),
      g: this.g,
      internal: this.internal,
      issue: (name, args) => this.issue(name, args, null, src),
      events: this.events,
      manual,
      quit: () => void (this.quit = true),
      replaceSession: (how) => this.replaceSession(how),
    };
  }

  /**
   * guestfish never takes a Key argument (luks-open's key, …) as a word: it
   * reads it, from the terminal or stdin (KeyReader). guestsh takes it
   * either way: when the words leave the keys out, they are read here, one
   * after the other, before the other words are checked (as guestfish does).
   */
  private async withKeys(action: ActionSpec, words: readonly string[], src: LineSource | null): Promise<readonly string[]> {
    const keys = action.args.flatMap((a, i) => (a.kind === 'String' && a.sub === 'Key' ? [i] : []));
    if (keys.length === 0) return words;
    let positional = words.length;
    while (positional > 0 && action.optargs.some((o) => words[positional - 1]!.startsWith(`${o.name}:`))) positional--;
    if (positional !== action.args.length - keys.length) return words;
    const reader = this.opts.keys ?? (this.defaultKeys ??= new KeyReader({ keysFromStdin: false, echoKeys: false }));
    const full = [...words];
    for (const i of keys) full.splice(i, 0, await reader.read(action.args[i]!.name, this.stdinSource ?? src));
    return full;
  }

  private defaultKeys: KeyReader | null = null;

  /** Parses, calls and prints one libguestfs action. */
  async runAction(action: ActionSpec, given: readonly string[], src: LineSource | null): Promise<void> {
    const words = await this.withKeys(action, given, src);
    const { args, optargs } = parseCommandArgs(action, words);
    const transfer: CallTransfer = {};
    for (const [i, a] of action.args.entries()) {
      if (a.kind !== 'String') continue;
      const v = args[i] as string;
      if (a.sub === 'FileIn') {
        if (v === '-') {
          if (this.opts.interactive && !this.stdinSource) {
            throw new UsageError(`${kebab(action.name)}: FileIn "-" (stdin) is not available at the prompt; use -<<END (a here document)`);
          }
          const source = this.stdinSource ?? src;
          if (!source) throw new UsageError(`${kebab(action.name)}: no standard input to read`);
          transfer.fileIn = source.rest();
        } else if (v.startsWith('-<<')) {
          const marker = v.slice(3);
          if (!marker) throw new UsageError('missing end marker in -<< expression');
          if (!src) throw new UsageError(`${kebab(action.name)}: a -<< here document needs a script or the prompt`);
          transfer.fileIn = await this.heredoc(src, marker);
        }
      } else if (a.sub === 'FileOut' && v === '-') {
        const out = this.out;
        transfer.fileOut = (chunk) => writeTo(out, chunk);
      }
    }
    const value = await this.call(action.name, args, optargs, transfer);
    const text = this.opts.json ? formatJson(action, value) : formatResult(action, value);
    if (text.length) await writeTo(this.out, text);
  }

  /** Calls an action: Ctrl-C aborts its transfer, and a progress bar shows for long ones. */
  async call(name: string, args: readonly ArgValue[] = [], optargs: OptArgs = {}, transfer: CallTransfer = {}): Promise<RetValue> {
    const ac = new AbortController();
    this.current = ac;
    let bar: ProgressBar | null = null;
    const onProgress = (p: { position: bigint; total: bigint }): void => {
      bar ??= new ProgressBar();
      bar.update(p.position, p.total);
    };
    if (this.opts.progress) this.session.on('progress', onProgress);
    try {
      return await this.session.call(name, args, optargs, { ...transfer, signal: ac.signal });
    } catch (e) {
      if (e instanceof Error) this.callErrors.add(e);
      throw e;
    } finally {
      if (this.opts.progress) this.session.off('progress', onProgress);
      (bar as ProgressBar | null)?.done();
      if (this.current === ac) this.current = null;
    }
  }

  private async heredoc(src: LineSource, marker: string): Promise<AsyncIterable<Uint8Array>> {
    const lines: string[] = [];
    for (;;) {
      const l = await src.readLine(this.opts.interactive ? '' : undefined);
      if (l === null) throw new UsageError(`end of input reached without finding '${marker}'`);
      if (l === marker) break;
      lines.push(`${l}\n`);
    }
    const data = Buffer.from(lines.join(''), 'utf8');
    return {
      async *[Symbol.asyncIterator]() {
        if (data.length) yield data;
      },
    };
  }

  /**
   * Ends the session and goes on in a new one. commit and discard reopen the
   * same images, mounted as before; reopen starts empty.
   */
  private async replaceSession(how: 'commit' | 'discard' | 'reopen'): Promise<void> {
    const old = this.session;
    if (how === 'reopen') {
      // guestfish's reopen: the shutdown action (changes committed), a new
      // handle given the settings guestfish itself sets (not the appliance
      // path, which guestsh does not let be set), then the old handle closed
      // (its close event heard), and no event handlers on the new one.
      await this.call('shutdown');
      const fresh = this.makeSession(old, true);
      await fresh.g.setVerbose(await this.g.getVerbose());
      await fresh.g.setTrace(await this.g.getTrace());
      await fresh.g.setAutosync(await this.g.getAutosync());
      await fresh.g.setPgroup(await this.g.getPgroup());
      await old.close();
      this.events.clear();
      this.events.attach(fresh);
      this.session = fresh;
      return;
    }
    const wasReady = old.state === 'ready';
    const mounts = wasReady ? await currentMounts(old.g) : [];
    if (how === 'commit') {
      const t0 = performance.now();
      await old.shutdown({ signal: this.opts.signal });
      const images = old.drives.filter((d) => d.tx).map((d) => d.path);
      await writeTo(
        this.out,
        images.length === 0
          ? 'nothing to commit: no image is open for writing\n'
          : `committed the changes to ${images.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
      );
    }
    // The same session continued, for the event handlers too: the old one's close is not theirs.
    this.events.detach();
    await old.close();
    this.session = this.makeSession(old, false);
    this.events.attach(this.session);
    for (const d of old.drives) {
      if (d.tx || d.readonly) await this.session.addDrive(d.path, { format: d.format, readonly: d.readonly, label: d.label });
    }
    if (!wasReady) return;
    await this.session.launch();
    await remount(this.session.g, mounts);
  }
}
