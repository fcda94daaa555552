// The session's states and the only moves between them. Every change of
// state goes through transition(), so a move the table does not list is a
// bug that fails loudly at the point it happens, instead of a session that
// runs on in the wrong state (a cold boot marked ready with a dead VM's
// channel attached, say).
//
//   config ──launch──▶ launching ──disks settled──▶ ready ──shutdown()/close──▶ closed
//    ▲  ▲                 │  │                        │
//    │  └─ launch failed ─┘  └──── close ──▶ closed   │ appliance died, or the shutdown /
//    │                                                │ kill_subprocess action
//    │                                                ▼
//    └──── drives released (handle put back) ──── stopped ──close──▶ closed
//
// config → closed: a session closed without ever launching. stopped is the
// moment between the appliance going and the handle being back in config, as
// libguestfs puts it back: no call may reach the old VM, and its drives are
// being committed (stopped by the action) or discarded (died).

import { UsageError } from '../errors.js';

export type SessionState = 'config' | 'launching' | 'ready' | 'stopped' | 'closed';

export const SESSION_STATES: readonly SessionState[] = ['config', 'launching', 'ready', 'stopped', 'closed'];

/** From each state, the states it may move to. closed is final. */
export const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  config: ['launching', 'closed'],
  launching: ['ready', 'config', 'closed'],
  ready: ['stopped', 'closed'],
  stopped: ['config', 'closed'],
  closed: [],
};

// What the user can do about an operation refused in each state.
const NEXT_STEP: Record<SessionState, string> = {
  config: 'launch the appliance first (run or launch)',
  launching: 'wait for launch to finish',
  ready: 'this can only be done before launch',
  stopped: 'the appliance has gone; add drives and launch again once its drives are released (after a refused commit: shutdown retries it, close discards it)',
  closed: 'the session is closed; open a new one',
};

/** A move the transition table does not allow: a guestsh bug, not a user error. */
export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError';
}

export class Lifecycle {
  private current: SessionState = 'config';

  get state(): SessionState {
    return this.current;
  }

  transition(to: SessionState): void {
    if (!TRANSITIONS[this.current].includes(to)) {
      throw new IllegalTransitionError(`session state ${this.current} → ${to} is not a legal transition (guestsh bug)`);
    }
    this.current = to;
  }

  /** Refuses `op` unless the session is in one of `states`, saying what to do instead. */
  assert(op: string, ...states: SessionState[]): void {
    if (states.includes(this.current)) return;
    throw new UsageError(`${op}: not allowed in state ${this.current}: ${NEXT_STEP[this.current]}`);
  }
}
