// The signals that end guestsh: SIGINT, SIGTERM and SIGHUP (bin/guestsh.js
// turns the death of the process that started it into a SIGHUP too). The
// first one aborts `signal`, and whatever runs winds down: a session not yet
// committing is discarded, one whose merge has begun completes it. The
// process then exits with 128 + the signal's number, as a shell reports a
// process a signal ended. A repeated signal changes nothing (the wind-down
// is bounded, and cutting a merge short would leave it to the next open);
// SIGKILL remains for the impatient.

import { constants } from 'node:os';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export class Stop {
  private readonly controller = new AbortController();
  private first: NodeJS.Signals | null = null;
  readonly signal: AbortSignal = this.controller.signal;

  private readonly onSignal = (sig: NodeJS.Signals): void => {
    if (this.first) return;
    this.first = sig;
    this.controller.abort(new Error(`stopped by ${sig}`));
  };

  constructor() {
    for (const sig of STOP_SIGNALS) process.on(sig, this.onSignal);
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
