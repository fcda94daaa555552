// The signals that end guestsh: SIGINT, SIGTERM and SIGHUP (bin/guestsh.js
// turns the death of the process that started it into a SIGHUP too). The
// first one aborts `signal`, and whatever runs winds down: a session not yet
// committing is discarded, one whose merge has begun completes it. The
// process then exits with 128 + the signal's number, as a shell reports a
// process a signal ended. A repeated signal changes nothing (the wind-down
// is bounded, and cutting a merge short would leave it to the next open);
// SIGKILL remains for the impatient.

import { readFileSync } from 'node:fs';
import { constants } from 'node:os';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Whose going away is a hang-up: the parent that re-ran node for this
 * worker (bin/guestsh.js passes its pid and, under npm, npm's shell's pid
 * in GUESTSH_STARTER), or npm's shell itself when nothing was re-run.
 * Null when losing the parent is no stop (`nohup guestsh … &`).
 */
interface Starter {
  pid: number;
  /** The parent's own parent, npm's `sh -c`, when it has to stay there. */
  npmShell: number | null;
}

function readStarter(): Starter | null {
  const passed = process.env.GUESTSH_STARTER;
  // Not for the processes this one starts.
  delete process.env.GUESTSH_STARTER;
  if (passed) {
    const [pid, npmShell] = passed.split(':').map(Number);
    return { pid: pid!, npmShell: npmShell || null };
  }
  return process.env.npm_lifecycle_event === undefined ? null : { pid: process.ppid, npmShell: null };
}

/** The parent of `pid`, or null once it has gone. */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may hold spaces: the fields after it are plain.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

export class Stop {
  private readonly controller = new AbortController();
  private first: NodeJS.Signals | null = null;
  private readonly starter = readStarter();
  readonly signal: AbortSignal = this.controller.signal;

  private readonly onSignal = (sig: NodeJS.Signals): void => {
    if (this.first) return;
    this.first = sig;
    this.controller.abort(new Error(`stopped by ${sig}`));
  };

  constructor() {
    for (const sig of STOP_SIGNALS) process.on(sig, this.onSignal);
  }

  /**
   * Hears a hang-up whose news is still on its way: the lifeline's end of
   * file and the parent's poll of npm's shell reach this process only on a
   * later turn of its event loop, and a commit may begin meanwhile. Called
   * at the last moment a stop still means discard; aborts `signal` then.
   */
  confirm(): void {
    const s = this.starter;
    if (this.first || !s) return;
    if (process.ppid !== s.pid || (s.npmShell !== null && parentOf(s.pid) !== s.npmShell)) this.onSignal('SIGHUP');
  }

  /** The signal that stopped the process, or null. */
  get received(): NodeJS.Signals | null {
    return this.first;
  }

  /** 128 + the signal's number once one has arrived, else `code`. */
  exitCode(code: number): number {
    return this.first ? 128 + constants.signals[this.first] : code;
  }
}
