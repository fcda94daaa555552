// What the resident session (resident.ts) and its clients (remote.ts) share:
// where the socket lives, the token that proves a client is this user, and
// the frames on the socket.
//
// Node cannot read a Unix socket's peer credentials (SO_PEERCRED), so the
// kernel's file permissions do that job: the socket and its token sit in a
// directory of this user's with mode 0700, which no other uid (root aside)
// can enter, so none can connect or read the token; the socket file itself
// is 0600 and the token file 0600 too. A client sends the token first; a
// connection without it is refused before any command runs. A directory that
// is not ours, not a directory, or open to others is refused, on both sides.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../runtime/errors.js';

/** --remote's value: a pid, or 'env' (none given: $GUESTFISH_PID names the session). */
export function remotePid(value: string | undefined): number | 'env' {
  if (value === undefined) return 'env';
  if (/^[1-9][0-9]*$/.test(value)) return Number(value);
  throw new UsageError(`--remote=${value}: not a process id; give the pid --listen printed (GUESTFISH_PID)`);
}

/** The per-user directory: $XDG_RUNTIME_DIR/guestsh when that is set (it is private by its spec), else TMPDIR/guestsh-remote-UID. */
export function residentDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, 'guestsh') : join(tmpdir(), `guestsh-remote-${process.getuid!()}`);
}

/** Refuses a directory another user could enter or replace. */
function checkPrivate(dir: string): void {
  const st = lstatSync(dir);
  const uid = process.getuid!();
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o777) !== 0o700) {
    const what = st.isSymbolicLink() ? 'a symbolic link' : !st.isDirectory() ? 'not a directory' : `owned by uid ${st.uid} with mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}`;
    throw new UsageError(`${dir} is ${what}, not a private directory of uid ${uid} (0700): remove it, or point TMPDIR (or XDG_RUNTIME_DIR) elsewhere`);
  }
}

/** Creates the directory (0700) or checks the one there; returns it. */
export function makeResidentDir(): string {
  const dir = residentDir();
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  checkPrivate(dir);
  return dir;
}

/** The socket and token of the session with this pid; the directory is checked first. */
export function residentPaths(pid: number, dir = residentDir()): { socket: string; token: string } {
  const socket = join(dir, `${pid}.sock`);
  // sun_path holds 108 bytes with its terminating NUL.
  if (Buffer.byteLength(socket) > 107) throw new UsageError(`the resident session's socket path is too long for a Unix socket (${socket}): point TMPDIR at a shorter directory`);
  return { socket, token: join(dir, `${pid}.token`) };
}

/** The client's check before it trusts the directory (and the server behind it). */
export function checkResidentDir(dir = residentDir()): string {
  checkPrivate(dir);
  return dir;
}

/** A new token in a new file only this user can read. */
export function writeToken(path: string): Buffer {
  const token = randomBytes(32);
  // 'wx': a file already there (a session of an earlier process with this pid) is the caller's to remove first.
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, token.toString('hex'));
  } finally {
    closeSync(fd);
  }
  return token;
}

export function readToken(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

export function tokenMatches(expected: Buffer, given: unknown): boolean {
  if (typeof given !== 'string' || !/^[0-9a-f]{64}$/.test(given)) return false;
  return timingSafeEqual(expected, Buffer.from(given, 'hex'));
}

/** What a client says first. */
export interface Hello {
  token: string;
  /** Host paths and `lcd` are the client's: the session works in this directory during its commands. */
  cwd: string;
  /** Commands as words (the command line's); null: a script, read from the client's stdin (or -f file). */
  commands: string[][] | null;
  /** A script's first failing command stops it (false when the client reads a terminal, as guestfish's prompt). */
  exitOnError: boolean;
}

/** The frames: a type byte, a 32-bit length, the payload. */
export const FRAME = {
  /** client: Hello, JSON */
  hello: 0x68,
  /** client: bytes of its stdin */
  input: 0x69,
  /** client: its stdin ended */
  inputEnd: 0x65,
  /** session: bytes for the client's stdout */
  stdout: 0x6f,
  /** session: bytes for the client's stderr */
  stderr: 0x72,
  /** session: a command reads stdin; send it */
  wantInput: 0x77,
  /** session: the commands are done; JSON { code } */
  exit: 0x78,
} as const;

export type FrameType = (typeof FRAME)[keyof typeof FRAME];

export function frame(type: FrameType, payload: string | Uint8Array = ''): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into frames. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Larger than any frame either side sends (chunks of a stream); a larger length is a broken or hostile peer. */
  static readonly MAX = 16 << 20;

  push(chunk: Buffer): { type: number; body: Buffer }[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: { type: number; body: Buffer }[] = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (len > FrameReader.MAX) throw new Error(`frame of ${len} bytes`);
      if (this.buf.length < 5 + len) break;
      out.push({ type: this.buf[0]!, body: this.buf.subarray(5, 5 + len) });
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }
}
