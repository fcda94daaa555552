// The command interpreter shared by scripts, the command line and the
// interactive prompt: guestfish's language (see lexer.ts), its meta-commands,
// and every public libguestfs action, printed as guestfish prints them.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { actionByName, suggestActions } from '../spec/index.js';
import type { ActionSpec } from '../spec/types.js';
import { kebab, parseCommandArgs, parseInteger, signature } from '../commands/parse.js';
import { CancelledError, GuestfsError, UsageError } from '../runtime/errors.js';
import type { ArgValue, OptArgs, RetValue } from '../spec/values.js';
import { Session, type CallTransfer } from '../runtime/session/session.js';
import { formatJson, formatResult } from './format.js';
import { shellAction } from './run.js';
import { globToRegExp } from './glob.js';
import { type LineSource, StringLineSource } from './input.js';
import { ParseError, parseLine } from './lexer.js';
import { helpFor, listCommands } from './help.js';
import { META_COMMANDS } from './meta.js';

export { META_COMMANDS };

export interface ShellOptions {
  json: boolean;
  interactive: boolean;
  /** Show progress bars (stderr) for calls that report progress. */
  progress: boolean;
}

export class CommandFailed extends Error {
  override name = 'CommandFailed';
}

function oneLine(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function writeOut(out: Writable, data: string | Uint8Array): Promise<void> {
  // A pipeline that exits early (| head) closes its stdin: drop the rest of
  // the output, as guestfish does without --pipe-error.
  if (out.destroyed || out.writableEnded) return;
  if (out.write(data)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

function sh(command: string, stdio: 'inherit' | 'pipe-in' | 'capture'): ReturnType<typeof spawn> {
  return spawn('/bin/sh', ['-c', command], {
    stdio: stdio === 'inherit' ? 'inherit' : stdio === 'pipe-in' ? ['pipe', 'inherit', 'inherit'] : ['inherit', 'pipe', 'inherit'],
  });
}

async function waitExit(child: ReturnType<typeof spawn>): Promise<number> {
  if (child.exitCode !== null) return child.exitCode;
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return code ?? (signal ? 128 : 1);
}

export class Shell {
  out: Writable = process.stdout;
  quit = false;
  /** Commands issued so far (the first failing one gets a longer hint). */
  commandNum = 0;
  /** Aborts the running call's transfer (Ctrl-C). */
  current: AbortController | null = null;
  /** Real stdin for FileIn "-" when commands come from the command line. */
  stdinSource: LineSource | null = null;

  constructor(
    public session: Session,
    readonly opts: ShellOptions,
    private readonly makeSession: (old: Session) => Session = (old) => {
      const s = new Session();
      Object.assign(s.settings, old.settings);
      return s;
    },
  ) {}

  private report(src: LineSource | null, msg: string): void {
    const where = src && !this.opts.interactive ? `${src.name}:${src.lineNo}: ` : '';
    process.stderr.write(`guestsh: ${where}error: ${msg}\n`);
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

  /** One line: returns false when it failed and the failure must stop the caller. */
  async runLine(line: string, src: LineSource, exitOnError: boolean): Promise<boolean> {
    let parsed;
    try {
      parsed = parseLine(line);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.report(src, e.message);
      return !exitOnError;
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
    this.commandNum++;
    let child: ReturnType<typeof spawn> | null = null;
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
      ok = false;
      if (e instanceof UsageError || e instanceof GuestfsError || e instanceof CancelledError || e instanceof CommandFailed || e instanceof ParseError) {
        this.report(src, oneLine(e));
      } else if (e instanceof Error) {
        // Whatever else fails inside one command (a host file, a broken
        // appliance) is that command's failure, not the shell's.
        this.report(src, oneLine(e));
        if (this.session.settings.verbose && e.stack) process.stderr.write(`${e.stack}\n`);
      } else throw e;
    } finally {
      if (child) {
        this.out = savedOut;
        child.stdin!.end();
        await waitExit(child);
      }
    }
    return ok;
  }

  /**
   * Ends the session keeping (commit) or dropping its changes, and goes on in
   * a new one over the same images, mounted as before.
   */
  private async restartSession(keep: boolean): Promise<void> {
    const old = this.session;
    const wasReady = old.state === 'ready';
    const mounts = wasReady ? Object.entries((await old.call('mountpoints')) as Record<string, string>) : [];
    if (keep) await old.shutdown();
    await old.close();
    this.session = this.makeSession(old);
    for (const d of old.drives) {
      if (d.tx || d.readonly) await this.session.addDrive(d.path, { format: d.format, readonly: d.readonly, label: d.label });
    }
    if (!wasReady) return;
    await this.session.launch();
    mounts.sort(([, a], [, b]) => a.length - b.length);
    for (const [device, mountpoint] of mounts) await this.session.call('mount', [device, mountpoint]);
  }

  /** Executes a command; throws on failure. */
  async dispatch(nameIn: string, args: string[], src: LineSource | null): Promise<void> {
    const name = nameIn.toLowerCase();
    switch (name) {
      case 'help':
        return this.help(args);
      case 'quit':
      case 'exit':
      case 'q':
        this.quit = true;
        return;
      case 'echo':
        return writeOut(this.out, `${args.join(' ')}\n`);
      case 'glob':
        return this.glob(args, src);
      case 'time': {
        if (args.length < 1) throw new UsageError("use 'time command [args...]'");
        const t0 = process.hrtime.bigint();
        if (!(await this.issue(args[0]!, args.slice(1), null, src))) throw new CommandFailed('time: the command failed');
        const us = (process.hrtime.bigint() - t0) / 1000n;
        return writeOut(this.out, `elapsed time: ${us / 1000000n}.${String((us / 10000n) % 100n).padStart(2, '0')} seconds\n`);
      }
      case 'lcd':
        if (args.length !== 1) throw new UsageError("use 'lcd directory' to change local directory");
        try {
          process.chdir(args[0]!);
        } catch (e) {
          throw new CommandFailed(`${args[0]}: ${(e as NodeJS.ErrnoException).code ?? oneLine(e)}`);
        }
        return;
      case 'setenv':
        if (args.length !== 2) throw new UsageError(`use '${name} VAR value' to set an environment variable`);
        process.env[args[0]!] = args[1]!;
        return;
      case 'unsetenv':
        if (args.length !== 1) throw new UsageError(`use '${name} VAR' to unset an environment variable`);
        delete process.env[args[0]!];
        return;
      case 'copy-in':
      case 'copy_in':
        return this.copyIn(args);
      case 'copy-out':
      case 'copy_out':
        return this.copyOut(args);
      case 'edit':
      case 'vi':
      case 'emacs':
        return this.edit(name, args);
      case 'more':
      case 'less':
        if (args.length !== 1) throw new UsageError(`use '${name} filename' to page a file`);
        return this.viewWith(args[0]!, name === 'less' ? 'less' : (process.env.PAGER ?? 'more'));
      case 'display':
        if (args.length !== 1) throw new UsageError('display filename');
        return this.viewWith(args[0]!, process.env.GUESTFISH_DISPLAY_IMAGE ?? 'display');
      case 'supported':
        return this.supported();
      case 'commit':
      case 'discard':
        if (args.length) throw new UsageError(`'${name}' command takes no parameters`);
        return this.restartSession(name === 'commit');
      case 'reopen':
        if (args.length) throw new UsageError("'reopen' command takes no parameters");
        await this.session.shutdown();
        await this.session.close();
        this.session = this.makeSession(this.session);
        return;
      case 'alloc':
      case 'allocate':
      case 'sparse':
        if (args.length !== 2) throw new UsageError(`use '${name} file size' to create an image`);
        return this.alloc(args[0]!, args[1]!, name === 'sparse');
      case 'man':
      case 'manual': {
        const code = await waitExit(sh('man 1 guestfish', 'inherit'));
        if (code !== 0) throw new CommandFailed('man: could not show the guestfish manual page');
        return;
      }
      case 'hexedit':
      case 'event':
      case 'list-events':
      case 'list_events':
      case 'delete-event':
      case 'delete_event':
        throw new UsageError(`${name}: this guestfish command is not available in guestsh`);
    }
    const action = shellAction(nameIn);
    if (!action) {
      const near = suggestActions(name);
      throw new UsageError(`unknown command '${nameIn}'${near.length ? `; did you mean ${near.join(', ')}?` : ''}`);
    }
    await this.runAction(action, args, src);
  }

  /** Parses, calls and prints one libguestfs action. */
  async runAction(action: ActionSpec, words: readonly string[], src: LineSource | null): Promise<void> {
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
        transfer.fileOut = (chunk) => writeOut(out, chunk);
      }
    }
    const value = await this.call(action, args, optargs, transfer);
    await this.print(action, value);
  }

  async call(action: ActionSpec, args: ArgValue[], optargs: OptArgs, transfer: CallTransfer = {}): Promise<RetValue> {
    const ac = new AbortController();
    this.current = ac;
    let bar: ProgressBar | null = null;
    const onProgress = (p: { position: bigint; total: bigint }): void => {
      bar ??= new ProgressBar();
      bar.update(p.position, p.total);
    };
    if (this.opts.progress) this.session.on('progress', onProgress);
    try {
      return await this.session.call(action.name, args, optargs, { ...transfer, signal: ac.signal });
    } finally {
      if (this.opts.progress) this.session.off('progress', onProgress);
      (bar as ProgressBar | null)?.done();
      if (this.current === ac) this.current = null;
    }
  }

  async print(action: ActionSpec, value: RetValue): Promise<void> {
    const text = this.opts.json ? formatJson(action, value) : formatResult(action, value);
    if (text.length) await writeOut(this.out, text);
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

  private async help(args: string[]): Promise<void> {
    if (args.length === 0 || args[0] === '--list' || args[0] === '-l') {
      await writeOut(this.out, listCommands());
      return;
    }
    const text = helpFor(args[0]!);
    if (text === null) throw new UsageError(`${args[0]}: command not known: use 'help --list' to list all commands`);
    await writeOut(this.out, text);
  }

  private async callName(name: string, args: ArgValue[] = [], optargs: OptArgs = {}, transfer: CallTransfer = {}): Promise<RetValue> {
    return this.session.call(name, args, optargs, transfer);
  }

  private async glob(args: string[], src: LineSource | null): Promise<void> {
    if (args.length < 1) throw new UsageError("use 'glob command [args...]'");
    const lists: string[][] = [];
    for (const a of args.slice(1)) {
      if (a.startsWith('/dev/')) {
        const re = globToRegExp(a);
        const found: string[] = [];
        for (const lister of ['list_devices', 'list_partitions', 'list_md_devices', 'lvs']) {
          let names: string[] = [];
          try {
            names = (await this.callName(lister)) as string[];
          } catch (e) {
            if (lister !== 'lvs') throw e;
          }
          for (const n of names) if (re.test(n)) found.push(n);
        }
        lists.push(found.length ? found : [a]);
      } else if (a.startsWith('/')) {
        const found = (await this.callName('glob_expand', [a])) as string[];
        lists.push(found.length ? found : [a]);
      } else lists.push([a]);
    }
    let failed = false;
    const pos = lists.map(() => 0);
    for (;;) {
      if (!(await this.issue(args[0]!, lists.map((l, i) => l[pos[i]!]!), null, src))) failed = true;
      let i = lists.length - 1;
      for (; i >= 0; i--) {
        pos[i]!++;
        if (pos[i]! < lists[i]!.length) break;
        pos[i] = 0;
      }
      if (i < 0) break;
    }
    if (failed) throw new CommandFailed('glob: some commands failed');
  }

  private async supported(): Promise<void> {
    const groups = (await this.callName('available_all_groups')) as string[];
    const width = Math.max(0, ...groups.map((g) => g.length));
    let text = '';
    for (const g of groups) {
      let yes = false;
      try {
        yes = ((await this.callName('internal_feature_available', [g])) as number) === 0;
      } catch {
        yes = false;
      }
      text += `${g.padStart(width)} ${yes ? 'yes' : 'no'}\n`;
    }
    await writeOut(this.out, text);
  }

  private async alloc(file: string, size: string, sparse: boolean): Promise<void> {
    const bytes = parseInteger(size, 'size');
    if (bytes < 0n) throw new UsageError(`${size}: size must not be negative`);
    await createRawImage(file, bytes, sparse);
    try {
      await this.session.addDrive(file, { format: 'raw' });
    } catch (e) {
      rmSync(file, { force: true });
      throw e;
    }
  }

  /** copy-in: tar on the host, tar_in into the guest directory. */
  private async copyIn(args: string[]): Promise<void> {
    if (args.length < 2) throw new UsageError("use 'copy-in <local> [<local>...] <remotedir>' to copy files into the image");
    const remote = args[args.length - 1]!;
    for (const local of args.slice(0, -1)) {
      if (!(await this.callName('is_dir', [remote], {}))) throw new CommandFailed(`copy_in: target '${remote}' is not a directory`);
      try {
        statSync(local);
      } catch {
        throw new CommandFailed(`copy_in: local file '${local}' does not exist`);
      }
      const abs = resolve(local);
      const tar = spawn('tar', ['-C', dirname(abs), '-cf', '-', basename(abs)], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = waitExit(tar);
      await this.call(actionByName('tar_in')!, ['-', remote], {}, { fileIn: tar.stdout! });
      if ((await exited) !== 0) throw new CommandFailed(`copy_in: tar of '${local}' failed`);
    }
  }

  /** copy-out: download a file, or tar_out a directory and unpack it on the host. */
  private async copyOut(args: string[]): Promise<void> {
    if (args.length < 2) throw new UsageError("use 'copy-out <remote> [<remote>...] <localdir>' to copy files out of the image");
    const local = args[args.length - 1]!;
    let st;
    try {
      st = statSync(local);
    } catch {
      st = null;
    }
    if (!st?.isDirectory()) throw new CommandFailed(`copy_out: target '${local}' is not a directory`);
    for (const remote of args.slice(0, -1)) {
      const name = remote === '/' ? '' : basename(remote);
      if (await this.callName('is_file', [remote], { followsymlinks: true })) {
        await this.call(actionByName('download')!, [remote, join(local, name)], {});
      } else if (await this.callName('is_dir', [remote], {})) {
        const dest = join(local, name);
        await import('node:fs/promises').then((f) => f.mkdir(dest, { recursive: true }));
        const tar = spawn('tar', ['-C', dest, '-xf', '-'], { stdio: ['pipe', 'inherit', 'inherit'] });
        const exited = waitExit(tar);
        try {
          await this.call(actionByName('tar_out')!, [remote, '-'], {}, { fileOut: (c) => writeOut(tar.stdin!, c) });
        } finally {
          tar.stdin!.end();
        }
        if ((await exited) !== 0) throw new CommandFailed(`copy_out: unpacking '${remote}' failed`);
      } else throw new CommandFailed(`copy_out: '${remote}' is not a file or directory`);
    }
  }

  private async downloadToTemp(remote: string): Promise<{ dir: string; file: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'guestsh-view-'));
    const file = join(dir, basename(remote) || 'file');
    try {
      await this.call(actionByName('download')!, [remote, file], {});
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return { dir, file };
  }

  private async viewWith(remote: string, program: string): Promise<void> {
    const { dir, file } = await this.downloadToTemp(remote);
    try {
      const code = await waitExit(sh(`${program} '${file.replaceAll("'", "'\\''")}'`, 'inherit'));
      if (code !== 0) throw new CommandFailed(`${program} exited with status ${code}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private async edit(name: string, args: string[]): Promise<void> {
    if (args.length !== 1) throw new UsageError(`use '${name} filename' to edit a file`);
    const editor = name === 'vi' ? 'vi' : name === 'emacs' ? 'emacs -nw' : (process.env.EDITOR ?? 'vi');
    const remote = args[0]!;
    const { dir, file } = await this.downloadToTemp(remote);
    try {
      const before = readFileSync(file);
      const code = await waitExit(sh(`${editor} '${file.replaceAll("'", "'\\''")}'`, 'inherit'));
      if (code !== 0) throw new CommandFailed(`${editor} exited with status ${code}; the file was not changed`);
      const after = readFileSync(file);
      if (before.equals(after)) return;
      // Upload beside the original, keep its owner and mode, then rename over it.
      const tmpName = `${dirname(remote) === '/' ? '' : dirname(remote)}/.guestsh-edit-${process.pid}`;
      await this.call(actionByName('upload')!, [file, tmpName], {});
      try {
        await this.callName('copy_attributes', [remote, tmpName], { all: true });
      } catch {
        // ownership and mode are best effort (e.g. on filesystems without them)
      }
      await this.callName('mv', [tmpName, remote]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** A raw image of `bytes` bytes, sparse or fully allocated (like guestfish's alloc/sparse and -N). */
export async function createRawImage(file: string, bytes: bigint, sparse: boolean): Promise<void> {
  const args = ['create', '-q', '-f', 'raw'];
  if (!sparse) args.push('-o', 'preallocation=full');
  args.push(file, String(bytes));
  const child = spawn('qemu-img', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const code = await waitExit(child);
  if (code !== 0) throw new CommandFailed(`qemu-img create ${file}: ${err.trim() || `exit ${code}`}`);
}

/** A one-line progress bar on stderr, shown once a call has run for ~1 s. */
export class ProgressBar {
  private readonly started = Date.now();
  private shown = false;
  private last = 0;

  update(position: bigint, total: bigint): void {
    if (!process.stderr.isTTY || total <= 0n) return;
    const now = Date.now();
    if (now - this.started < 1000 || now - this.last < 100) return;
    this.last = now;
    this.shown = true;
    const frac = Math.min(1, Number(position) / Number(total));
    const cols = Math.max(20, (process.stderr.columns ?? 80) - 20);
    const filled = Math.round(frac * cols);
    const elapsed = (now - this.started) / 1000;
    const eta = frac > 0 ? Math.max(0, Math.round(elapsed / frac - elapsed)) : 0;
    const mmss = `${String(Math.floor(eta / 60)).padStart(2, '0')}:${String(eta % 60).padStart(2, '0')}`;
    process.stderr.write(`\r${String(Math.floor(frac * 100)).padStart(3)}% [${'#'.repeat(filled)}${'-'.repeat(cols - filled)}] ${mmss} ETA`);
  }

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}

export { signature };
