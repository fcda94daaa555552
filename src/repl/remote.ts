// `guestsh --remote[=PID] [CMD ARGS [: CMD ARGS]…]`: runs commands in the
// resident session `guestsh --listen` started (resident.ts). With commands on
// the command line, those; without, the script on stdin (or -f SCRIPT), read
// line by line by the session's interpreter. The session's output comes back
// on this process's stdout and stderr, and its status is this one's: 0 when
// the commands succeeded, 1 when one failed (which, like a failing command in
// a script, ends the session and discards its changes; `-cmd` does not).
//
// A pipeline runs this once per command, so it is kept cheap to start: it
// loads neither the command table nor the spec (the session checks the
// commands for typos before running any), and `guestsh --remote[=PID] CMD …`
// and `--remote[=PID] -- CMD …` reach it from src/remote-cli.ts without the
// option table; any other option goes through the full command line.

import { connect } from 'node:net';
import { createReadStream, existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { UsageError } from '../runtime/errors.js';
import type { Options } from './options.js';
import { splitCommands } from './command-words.js';
import { checkResidentDir, FRAME, FrameReader, frame, type Hello, readToken, remotePid, residentPaths } from './resident-wire.js';
import type { Stop } from './stop.js';

/** What a --remote invocation sends: to which session, and the commands (none: a script from -f FILE or stdin). */
export interface RemoteRequest {
  pid: number | 'env';
  file: string | null;
  commands: string[][];
}

/** Options that open images belong to --listen: here they would be ignored, as guestfish ignores them, and that surprises. */
export function remoteRequest(o: Options): RemoteRequest {
  if (o.listen) throw new UsageError('--listen and --remote cannot be used together');
  const local = o.drives.length ? '-a/-N' : o.mounts.length ? '-m' : o.inspector ? '-i' : o.readonly ? '--ro' : null;
  if (local) throw new UsageError(`${local} with --remote: the resident session's images are given to --listen, or added in it (guestsh --remote add-drive IMAGE)`);
  return { pid: o.remote ?? 'env', file: o.file, commands: o.commands };
}

/**
 * The words of the common case, `--remote[=PID] [--] CMD ARGS [: CMD …]`, read
 * without the option table; null for anything else (an option after
 * --remote, a bad pid), which the full command line then parses and reports.
 */
export function leanRemoteRequest(argv: readonly string[]): RemoteRequest | null {
  // The pid itself is remotePid's to check, as it is for the option table.
  const m = /^--remote(?:=(.*))?$/.exec(argv[0] ?? '');
  if (!m) return null;
  let words = argv.slice(1);
  if (words[0] === '--') words = words.slice(1);
  else if (words[0]?.startsWith('-') && words[0] !== '-') return null;
  try {
    return { pid: remotePid(m[1]), file: null, commands: splitCommands(words) };
  } catch {
    return null;
  }
}

function targetPid(r: RemoteRequest): number {
  if (typeof r.pid === 'number') return r.pid;
  const env = process.env.GUESTFISH_PID;
  if (env === undefined || !/^[1-9][0-9]*$/.test(env)) {
    throw new UsageError(`--remote: set GUESTFISH_PID to the resident session's pid (eval "$(guestsh --listen …)" does) or give --remote=PID${env === undefined ? '' : ` (GUESTFISH_PID is '${env}')`}`);
  }
  return Number(env);
}

export async function remoteCommands(o: RemoteRequest, stop: Stop): Promise<number> {
  const pid = targetPid(o);
  let paths: { socket: string; token: string };
  let token: string;
  try {
    paths = residentPaths(pid, checkResidentDir());
    token = readToken(paths.token);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    process.stderr.write(`guestsh: error: no resident session with pid ${pid} for this user (start one with eval "$(guestsh --listen -a IMAGE)")\n`);
    return 1;
  }
  if (o.file !== null && !existsSync(o.file)) throw new UsageError(`-f ${o.file}: no such file`);
  const script: Readable | null = o.commands.length ? null : o.file !== null ? createReadStream(o.file) : process.stdin;
  const hello: Hello = {
    token,
    cwd: process.cwd(),
    commands: o.commands.length ? o.commands : null,
    // Lines typed at a terminal go on past a failure, as at guestfish's prompt.
    exitOnError: !(o.file === null && process.stdin.isTTY),
  };
  return new Promise<number>((resolve) => {
    const socket = connect(paths.socket);
    const reader = new FrameReader();
    let code: number | null = null;
    let input: Readable | null = null;
    const onStop = (): void => void socket.destroy();
    stop.signal.addEventListener('abort', onStop, { once: true });
    socket.on('connect', () => socket.write(frame(FRAME.hello, JSON.stringify(hello))));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (code === null && !stop.signal.aborted) {
        const why = e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? 'it is not running (killed?)' : e.message;
        process.stderr.write(`guestsh: error: cannot reach the resident session with pid ${pid}: ${why}\n`);
        code = 1;
      }
    });
    socket.on('close', () => {
      stop.signal.removeEventListener('abort', onStop);
      input?.unpipe();
      input?.destroy();
      if (code === null && !stop.signal.aborted) process.stderr.write(`guestsh: error: the resident session with pid ${pid} ended before it answered\n`);
      resolve(stop.exitCode(code ?? 1));
    });
    // A reader of our stdout that went away (| head): the rest is dropped, as the local shell drops it, and the commands go on.
    let stdoutGone = false;
    process.stdout.on('error', () => {
      stdoutGone = true;
      socket.resume();
    });
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (e) {
        process.stderr.write(`guestsh: error: the resident session with pid ${pid} sent a broken reply (${(e as Error).message})\n`);
        code = 1;
        return void socket.destroy();
      }
      for (const f of frames) {
        if (f.type === FRAME.stdout || f.type === FRAME.stderr) {
          const to = f.type === FRAME.stdout ? process.stdout : process.stderr;
          if (to === process.stdout && stdoutGone) continue;
          if (!to.write(f.body)) {
            socket.pause();
            to.once('drain', () => socket.resume());
          }
        } else if (f.type === FRAME.wantInput && input === null) {
          input = script ?? process.stdin;
          input.on('data', (c: Buffer) => socket.write(frame(FRAME.input, c)));
          input.on('end', () => socket.write(frame(FRAME.inputEnd)));
          input.on('error', (e) => {
            process.stderr.write(`guestsh: error: ${o.file ?? 'stdin'}: ${e.message}\n`);
            socket.destroy();
          });
        } else if (f.type === FRAME.exit) {
          code = (JSON.parse(f.body.toString('utf8')) as { code: number }).code;
        }
      }
    });
  });
}
