// The shell's event handlers without an appliance: guestfish's event-set
// words (prefixes, `*`, refused and unknown names), its listing, and a
// handler run for a session event with $EVENT and the event's arguments.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { EventHandlers, parseEventSet } from '../../src/commands/events.js';
import { Session } from '../../src/runtime/session/session.js';

function collector(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write: (c: Buffer, _e, done) => {
      text += c.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

describe('event sets', () => {
  it('reads names and prefixes as guestfish does, in libguestfs order', () => {
    expect(parseEventSet('*')).toBeNull();
    expect(parseEventSet('subprocess_quit,close')).toEqual(['close', 'subprocess_quit']);
    // The first name a word begins: "launch" is launch_done, "c" close, "p" progress.
    expect(parseEventSet('launch,c,p')).toEqual(['close', 'launch_done', 'progress']);
  });

  it('refuses the events guestsh cannot fire, and unknown names', () => {
    expect(() => parseEventSet('close,library')).toThrow('event: library: not supported in guestsh: guestsh has no library debug messages');
    expect(() => parseEventSet('libvirt_auth')).toThrow('event: libvirt_auth: not supported in guestsh: guestsh does not use libvirt');
    expect(() => parseEventSet('closed')).toThrow("event: unknown event name 'closed'");
    expect(() => parseEventSet('close,')).toThrow("event: unknown event name ''");
  });
});

describe('handlers', () => {
  it('list as guestfish lists them, numbered once per session', () => {
    const h = new EventHandlers(() => ({ out: process.stdout, err: process.stderr }));
    h.add('ev1', '*', 'echo a');
    h.add('ev2', 'close', 'echo b');
    h.add('ev1', 'trace,enter', 'echo c');
    expect(h.list()).toBe('"ev1" (0): *: echo a\n"ev1" (2): enter,trace: echo c\n"ev2" (1): close: echo b\n');
    h.delete('ev1');
    h.add('ev3', 'launch', 'echo d');
    expect(h.list()).toBe('"ev2" (1): close: echo b\n"ev3" (3): launch_done: echo d\n');
    expect(() => h.delete('ev1')).toThrow('delete-event: ev1: no such event handler');
    h.clear();
    h.add('ev4', 'close', 'echo e');
    expect(h.list()).toBe('"ev4" (0): close: echo e\n');
  });

  it("run for the session's events with $EVENT and the event's arguments, and stop when detached", () => {
    const out = collector();
    const err = collector();
    const h = new EventHandlers(() => ({ out: out.stream, err: err.stream }));
    const s = new Session({ env: {} });
    h.attach(s);
    h.add('all', '*', 'echo "$EVENT $#: $*"; echo oops >&2');
    h.add('some', 'trace', 'echo "again $1"');
    s.emit('enter', 'mkdir');
    s.emit('trace', 'mkdir "/x"');
    s.emit('progress', { action: 'download', proc: 66, serial: 7, position: 10n, total: 20n });
    s.emit('launched');
    h.detach();
    s.emit('closed');
    expect(out.text()).toBe('enter 1: mkdir\ntrace 1: mkdir "/x"\nagain mkdir "/x"\nprogress 4: 66 7 10 20\nlaunch_done 0: \n');
    expect(err.text()).toBe('oops\n'.repeat(4));
  });
});
