// `guestsh --listen`: a resident session that later `guestsh --remote`
// commands talk to, as guestfish's --listen does.
//
// The foreground process starts the session in a detached process (the same
// command line, with a pipe to say when it is ready), passes its error lines
// on while it opens the images, and once it listens prints the lines that
// point --remote at it (GUESTFISH_PID=N; export GUESTFISH_PID) and exits 0;
// if the opening fails, it prints nothing on stdout and exits as the session
// did. The detached process runs the shell's own interpreter (Shell) on each
// client's commands, one client at a time in the order they arrived, with
// the client's stdout and stderr and in the client's working directory. The
// session ends
//   - at `exit`/`quit`: by the shell's rule, changes committed when every
//     command succeeded (--commit/--discard override); the reply comes once
//     the commit is done;
//   - at a failing command (not `-cmd`), as a script stops there (and as
//     guestfish's listener exits): discarded;
//   - after --idle-timeout without a command, or at SIGINT/SIGTERM/SIGHUP:
//     discarded, as any stop before a commit.
// A client that goes away mid-command has its call cancelled where the call
// can be, and the session goes on with the next client; a failure nobody was
// there to see does not end it, but counts as a failed command at `exit`.

import { spawn } from 'node:child_process';
import { closeSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { UsageError } from '../runtime/errors.js';
import { writeTo } from '../commands/host.js';
import { checkCommandLine } from '../commands/table.js';
import { failureLine, oneLine } from './dialect.js';
import { type LineSource, StreamLineSource } from './input.js';
import type { Options } from './options.js';
import { FRAME, FrameReader, frame, type Hello, makeResidentDir, residentPaths, tokenMatches, writeToken } from './resident-wire.js';
import type { Shell } from './shell.js';
import type { Stop } from './stop.js';

/** Names the fd on which the detached process says it is ready. */
const READY_FD = 'GUESTSH_RESIDENT_READY_FD';
/** The most output one frame carries. */
const FRAME_CHUNK = 1 << 20;
/** A connection that has not said who it is by then is dropped (it holds no place in the queue). */
const HELLO_TIMEOUT_MS = 10_000;

/** The option combinations guestfish refuses too. */
export function checkListenOptions(o: Options): void {
  if (o.remote !== null) throw new UsageError('--listen and --remote cannot be used together');
  if (o.file !== null) throw new UsageError('--listen and -f cannot be used together: start the session, then send the script with guestsh --remote -f SCRIPT');
  if (o.commands.length) throw new UsageError(`--listen takes no commands (got '${o.commands[0]!.join(' ')}'): send them with guestsh --remote CMD`);
  if (o.dryRun) throw new UsageError('--listen and --dry-run cannot be used together: end a resident session with --discard to throw its changes away');
}

/** True in the detached process that serves the session. */
export function isResidentProcess(): boolean {
  return process.env[READY_FD] !== undefined;
}

/**
 * The foreground of `guestsh --listen`: starts the session detached and
 * returns once it listens (0, the snippet printed) or has failed (its status).
 */
export async function startResident(argv: readonly string[], o: Options, stop: Stop): Promise<number> {
  checkListenOptions(o);
  const env: NodeJS.ProcessEnv = { ...process.env, [READY_FD]: '3' };
  // Under npm, bin/guestsh.js takes a changed parent for a hang-up; this process's exit must not end the session.
  delete env.npm_lifecycle_event;
  // Isolates (TypeScript lines in a script) need the flag; with it, bin/guestsh.js runs the CLI in that very process, so its pid is the session's.
  const child = spawn(process.execPath, ['--no-node-snapshot', process.argv[1]!, ...argv], {
    detached: true,
    stdio: [o.keysFromStdin ? 'pipe' : 'ignore', 'ignore', 'pipe', 'pipe'],
    env,
  });
  if (o.keysFromStdin) process.stdin.pipe(child.stdin!);
  child.stderr!.pipe(process.stderr, { end: false });
  const ready = child.stdio[3] as Readable;
  const onStop = (): void => void child.kill('SIGTERM');
  stop.signal.addEventListener('abort', onStop, { once: true });
  try {
    const outcome = await new Promise<'ready' | number>((resolve) => {
      let said = '';
      ready.on('data', (c: Buffer) => {
        said += c.toString();
        if (said.includes('ready\n')) resolve('ready');
      });
      child.on('error', (e) => {
        process.stderr.write(`guestsh: error: could not start the resident session: ${e.message}\n`);
        resolve(1);
      });
      // 'close', not 'exit': its last error lines have been passed on by then.
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    if (outcome !== 'ready') return stop.exitCode(outcome);
    process.stdout.write(o.csh ? `setenv GUESTFISH_PID ${child.pid}\n` : `GUESTFISH_PID=${child.pid}; export GUESTFISH_PID\n`);
    return 0;
  } finally {
    stop.signal.removeEventListener('abort', onStop);
    if (o.keysFromStdin) process.stdin.unpipe(child.stdin!);
    child.stdin?.destroy();
    child.stderr!.unpipe(process.stderr);
    child.stderr!.destroy();
    ready.destroy();
    child.unref();
  }
}

/** One connected client. */
class Client {
  gone = false;
  hello: Hello | null = null;
  /** Its stdin, asked for on first read (a command that reads none never makes the client read its terminal). */
  readonly input: Readable;
  readonly out: Writable;
  readonly err: Writable;
  private waiting: (() => void) | null = null;

  constructor(readonly socket: Socket) {
    const send = (type: typeof FRAME.stdout | typeof FRAME.stderr) =>
      new Writable({
        write: (chunk: Buffer, _enc, done) => {
          if (this.gone) return done();
          // A long listing is one write; frames stay well under what a reader accepts.
          let flowing = true;
          for (let at = 0; at < chunk.length; at += FRAME_CHUNK) flowing = this.socket.write(frame(type, chunk.subarray(at, at + FRAME_CHUNK)));
          if (flowing) return done();
          this.waiting = done;
          this.socket.once('drain', () => this.release());
        },
      });
    this.out = send(FRAME.stdout);
    this.err = send(FRAME.stderr);
    let asked = false;
    this.input = new Readable({
      read: () => {
        if (asked || this.gone) return;
        asked = true;
        this.socket.write(frame(FRAME.wantInput));
      },
    });
    // The reader (a line source) gets the error; a stream nobody reads is dropped quietly.
    this.input.on('error', () => {});
  }

  /** Its stdin as a script: the lines a gone client sent but that have not run yet never run. */
  lines(): LineSource {
    const src = new StreamLineSource(this.input, '*stdin*');
    const client = this;
    return {
      name: src.name,
      get lineNo() {
        return src.lineNo;
      },
      set lineNo(n) {
        src.lineNo = n;
      },
      readLine: async () => {
        const line = await src.readLine();
        if (client.gone) throw new Error('the remote client went away');
        return line;
      },
      rest: () => src.rest(),
    };
  }

  private release(): void {
    const done = this.waiting;
    this.waiting = null;
    done?.();
  }

  /** The client is gone: its output goes nowhere, its stdin fails (a half-read upload must not pass for a whole one). */
  lost(): void {
    if (this.gone) return;
    this.gone = true;
    this.release();
    this.input.destroy(new Error('the remote client went away'));
  }

  async reply(code: number): Promise<void> {
    if (this.gone) return;
    await new Promise<void>((resolve) => this.socket.end(frame(FRAME.exit, JSON.stringify({ code })), () => resolve()));
  }
}

type End = { how: 'exit'; client: Client } | { how: 'failed'; client: Client } | { how: 'idle' };

/**
 * The detached process: listens, says it is ready, serves clients one at a
 * time until the session ends; returns the process's exit status.
 * `finish(ok)` is the shell's end of a run (commit or not by its rule).
 */
export async function serveResident(shell: Shell, o: Options, finish: (ok: boolean) => Promise<void>): Promise<number> {
  // Once the foreground has gone, stderr leads nowhere: nothing more may fail on it.
  process.stderr.on('error', () => {});
  const dir = makeResidentDir();
  const paths = residentPaths(process.pid, dir);
  // A socket or token under this pid is a killed session's (pids are reused): ours now.
  for (const p of [paths.socket, paths.token]) unlinkIfThere(p);
  const token = writeToken(paths.token);
  const cleanUp = (): void => {
    for (const p of [paths.socket, paths.token]) unlinkIfThere(p);
    try {
      rmdirSync(dir);
    } catch {
      // other sessions' sockets are still there
    }
  };
  // Also at a stop: cli.ts ends the process from its signal handler.
  process.on('exit', cleanUp);

  let over = false;
  let settle: (end: End) => void = () => {};
  const end = new Promise<End>((resolve) => (settle = resolve));
  const ended = (how: End): void => {
    over = true;
    settle(how);
  };
  /** Commands run one at a time: each client's turn is chained after the one before. */
  let queue = Promise.resolve();
  let waitingClients = 0;
  let failedUnseen = false;
  let idle: NodeJS.Timeout | null = null;
  const armIdle = (): void => {
    idle = setTimeout(() => ended({ how: 'idle' }), o.idleTimeoutMs);
  };

  const turn = async (c: Client): Promise<void> => {
    if (c.gone) return;
    if (over) {
      await writeTo(c.err, 'guestsh: error: the resident session ended before these commands ran; start another with guestsh --listen\n');
      return c.reply(1);
    }
    const hello = c.hello!;
    // A typo is refused before any command runs, and does not end the session as a
    // failing command would (the client does not load the command table to check it).
    try {
      checkCommandLine(hello.commands ?? []);
    } catch (e) {
      await writeTo(c.err, failureLine(oneLine(e)));
      return c.reply(1);
    }
    const home = process.cwd();
    try {
      process.chdir(hello.cwd);
    } catch (e) {
      await writeTo(c.err, `guestsh: error: the resident session cannot work in ${hello.cwd}: ${(e as Error).message}\n`);
      return c.reply(1);
    }
    shell.out = c.out;
    shell.err = c.err;
    // 'cut': the client's stdin broke between commands because it went away; no command failed.
    let outcome: 'ok' | 'failed' | 'cut';
    try {
      let ok: boolean;
      if (hello.commands) {
        // As on the command line: FileIn "-" reads the client's stdin.
        shell.stdinSource = new StreamLineSource(c.input, '*stdin*');
        ok = await shell.runCommands(hello.commands);
      } else ok = await shell.runSource(c.lines(), hello.exitOnError);
      outcome = ok ? 'ok' : 'failed';
    } catch (e) {
      outcome = c.gone ? 'cut' : 'failed';
      if (!c.gone) await writeTo(c.err, `guestsh: error: ${(e as Error).message}\n`);
    } finally {
      shell.stdinSource = null;
      shell.out = process.stdout;
      shell.err = process.stderr;
      process.chdir(home);
    }
    if (shell.quit) return ended({ how: 'exit', client: c });
    if (outcome === 'failed' && !c.gone) return ended({ how: 'failed', client: c });
    if (outcome === 'failed') failedUnseen = true;
    await c.reply(outcome === 'ok' ? 0 : 1);
  };

  const accept = (socket: Socket): void => {
    const c = new Client(socket);
    const reader = new FrameReader();
    const helloTimer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    socket.on('close', () => {
      clearTimeout(helloTimer);
      c.lost();
      // Ctrl-C at the prompt cancels the running call; a client gone is the same.
      if (shell.out === c.out) shell.current?.abort();
    });
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch {
        return void socket.destroy();
      }
      for (const f of frames) {
        if (c.hello === null) {
          if (f.type !== FRAME.hello) return void socket.destroy();
          const hello = parseHello(f.body);
          if (hello === null) return void socket.destroy();
          if (!tokenMatches(token, hello.token)) {
            socket.end(frame(FRAME.stderr, 'guestsh: error: the resident session refused the connection: wrong token\n'));
            return;
          }
          clearTimeout(helloTimer);
          c.hello = hello;
          if (idle) clearTimeout(idle);
          idle = null;
          waitingClients++;
          queue = queue
            .then(() => turn(c))
            // One client's trouble must not stop the queue for the next.
            .catch(async (e: Error) => {
              await writeTo(c.err, `guestsh: error: ${e.message}\n`);
              await c.reply(1);
            })
            .finally(() => {
              if (--waitingClients === 0 && !over) armIdle();
            });
        } else if (f.type === FRAME.input) c.input.push(f.body);
        else if (f.type === FRAME.inputEnd) c.input.push(null);
      }
    });
  };

  const server: Server = createServer({ allowHalfOpen: false }, accept);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // 0600 from the start: no moment in which the socket is open to others.
    const mask = process.umask(0o177);
    server.listen(paths.socket, () => {
      process.umask(mask);
      resolve();
    });
  });
  armIdle();
  const readyFd = Number(process.env[READY_FD]);
  delete process.env[READY_FD];
  try {
    writeSync(readyFd, 'ready\n');
    closeSync(readyFd);
  } catch {
    // the foreground is gone (killed while the images opened): serve anyway; --remote finds the session by its pid
  }

  const how = await end;
  if (idle) clearTimeout(idle);
  // No one else gets a turn: the socket goes first, then the session ends.
  server.close();
  unlinkIfThere(paths.socket);
  let code = how.how === 'exit' ? 0 : 1;
  // What the end prints (a close event's handler, the commit's notices) is the client's that ended it, as with guestfish.
  if (how.how !== 'idle') {
    shell.out = how.client.out;
    shell.err = how.client.err;
  }
  if (how.how === 'exit') {
    try {
      await finish(!failedUnseen);
    } catch (e) {
      await writeTo(how.client.err, `guestsh: error: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  await shell.session.close();
  if (how.how !== 'idle') await how.client.reply(code);
  cleanUp();
  return how.how === 'idle' ? 0 : code;
}

/** The client's first frame, if it is a well-formed Hello. */
function parseHello(body: Buffer): Hello | null {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const h = v as Record<string, unknown>;
  const words = (x: unknown): x is string[] => Array.isArray(x) && x.length > 0 && x.every((w) => typeof w === 'string');
  if (typeof h.token !== 'string' || typeof h.cwd !== 'string' || typeof h.exitOnError !== 'boolean') return null;
  if (h.commands !== null && !(Array.isArray(h.commands) && h.commands.every(words))) return null;
  return { token: h.token, cwd: h.cwd, commands: h.commands as string[][] | null, exitOnError: h.exitOnError };
}

function unlinkIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
