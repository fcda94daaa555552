// The session's transition table, without a VM: every listed move is
// allowed, every other move (staying put included) throws, and a refused
// operation names the state and what to do next.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/index.js';
import { IllegalTransitionError, Lifecycle, SESSION_STATES, type SessionState, TRANSITIONS } from '../../src/runtime/session/lifecycle.js';

/** A lifecycle in `state`, reached by legal moves only. */
function at(state: SessionState): Lifecycle {
  const paths: Record<SessionState, SessionState[]> = {
    config: [],
    launching: ['launching'],
    ready: ['launching', 'ready'],
    stopped: ['launching', 'ready', 'stopped'],
    closed: ['closed'],
  };
  const l = new Lifecycle();
  for (const s of paths[state]) l.transition(s);
  expect(l.state).toBe(state);
  return l;
}

describe('session lifecycle', () => {
  it('starts in config', () => {
    expect(new Lifecycle().state).toBe('config');
  });

  it('is the table the design names', () => {
    expect(TRANSITIONS).toEqual({
      config: ['launching', 'closed'],
      launching: ['ready', 'config', 'closed'],
      ready: ['stopped', 'closed'],
      stopped: ['config', 'closed'],
      closed: [],
    });
  });

  for (const from of SESSION_STATES) {
    for (const to of SESSION_STATES) {
      const legal = TRANSITIONS[from].includes(to);
      it(`${legal ? 'allows' : 'refuses'} ${from} → ${to}`, () => {
        const l = at(from);
        if (legal) {
          l.transition(to);
          expect(l.state).toBe(to);
        } else {
          expect(() => l.transition(to)).toThrow(IllegalTransitionError);
          expect(() => l.transition(to)).toThrow(`session state ${from} → ${to} is not a legal transition`);
          expect(l.state).toBe(from);
        }
      });
    }
  }

  it('refuses an operation outside its states with a usage error saying what to do', () => {
    expect(() => at('config').assert('mount', 'ready')).toThrow(new UsageError('mount: not allowed in state config: launch the appliance first (run or launch)'));
    expect(() => at('launching').assert('mount', 'ready')).toThrow(/state launching: wait for launch to finish/);
    expect(() => at('ready').assert('add_drive', 'config')).toThrow(/state ready: this can only be done before launch/);
    expect(() => at('stopped').assert('mount', 'ready')).toThrow(/state stopped: the appliance has gone; add drives and launch again once its drives are released \(after a refused commit: shutdown retries it, close discards it\)/);
    expect(() => at('closed').assert('mount', 'ready')).toThrow(/state closed: the session is closed; open a new one/);
    expect(() => at('ready').assert('mount', 'ready')).not.toThrow();
    expect(() => at('launching').assert('debug', 'launching', 'ready')).not.toThrow();
  });
});
