// guestfish's event handlers (`event`, `list-events`, `delete-event`): a
// host shell command run each time the session fires one of the events it
// is registered for. As in guestfish, the command runs to its end before the
// shell goes on (its output lands where the event happened), with $EVENT set
// to the event's name and the event's message, then its numbers, as $1….
// Its stdin is closed: the script the shell reads is not the handler's.

import { spawnSync } from 'node:child_process';
import type { Writable } from 'node:stream';
import { UsageError } from '../runtime/errors.js';
import type { Session, SessionEvents } from '../runtime/session/session.js';

/** libguestfs's event names, in the order guestfish's parser tries them: a word picks the first it is a prefix of ("launch" is launch_done). */
const PARSE_ORDER = ['close', 'subprocess_quit', 'launch_done', 'progress', 'appliance', 'library', 'trace', 'enter', 'libvirt_auth', 'warning'] as const;
export type EventName = (typeof PARSE_ORDER)[number];

/** The order libguestfs writes an event set in (its bit order). */
const PRINT_ORDER: readonly EventName[] = ['appliance', 'close', 'enter', 'launch_done', 'library', 'libvirt_auth', 'progress', 'subprocess_quit', 'trace', 'warning'];

/**
 * The events guestsh fires, each from one session event, with what it
 * passes to the handler (libguestfs's message, then its numbers); the others
 * are refused with the reason.
 */
const FIRED: { [E in EventName]?: { from: keyof SessionEvents; args: (...a: never[]) => string[] } } = {
  close: { from: 'closed', args: () => [] },
  subprocess_quit: { from: 'applianceQuit', args: () => [] },
  launch_done: { from: 'launched', args: () => [] },
  progress: { from: 'progress', args: (p: SessionEvents['progress'][0]) => [p.proc, p.serial, p.position, p.total].map(String) },
  appliance: { from: 'console', args: (line: string) => [line] },
  trace: { from: 'trace', args: (line: string) => [line] },
  enter: { from: 'enter', args: (action: string) => [action] },
  // guestsh's notices are what libguestfs reports as warnings: for the user, not errors.
  warning: { from: 'notice', args: (line: string) => [line] },
};

export const REFUSED_EVENTS: Readonly<Partial<Record<EventName, string>>> = {
  library: 'guestsh has no library debug messages (with -v the appliance event carries its console)',
  libvirt_auth: 'guestsh does not use libvirt',
};

interface Handler {
  name: string;
  /** Its number, as libguestfs numbers event callbacks: never reused within a session. */
  handle: number;
  /** null: every event (`*`). */
  events: readonly EventName[] | null;
  command: string;
}

/** An event set as guestfish reads it: `*`, or names (or prefixes of names) separated by commas. */
export function parseEventSet(text: string): EventName[] | null {
  if (text === '*') return null;
  const events = new Set<EventName>();
  for (const word of text.split(',')) {
    const name = word === '' ? undefined : PARSE_ORDER.find((n) => n.startsWith(word));
    if (!name) throw new UsageError(`event: unknown event name '${word}' (names: ${PARSE_ORDER.join(', ')}, or * for all)`);
    const refused = REFUSED_EVENTS[name];
    if (refused) throw new UsageError(`event: ${name}: not supported in guestsh: ${refused}`);
    events.add(name);
  }
  return PRINT_ORDER.filter((n) => events.has(n));
}

export class EventHandlers {
  private handlers: Handler[] = [];
  private nextHandle = 0;
  private detachSession: (() => void) | null = null;

  /** `out` and `err`: where a handler's output goes at the moment it runs (the shell's current streams). */
  constructor(private readonly streams: () => { out: Writable; err: Writable }) {}

  /** Listens to `session`'s events (instead of the previous session's). */
  attach(session: Session): void {
    this.detach();
    const offs: (() => void)[] = [];
    for (const [event, fired] of Object.entries(FIRED) as [EventName, NonNullable<(typeof FIRED)[EventName]>][]) {
      const listener = (...a: never[]): void => this.fire(event, fired.args(...a));
      session.on(fired.from, listener as never);
      offs.push(() => session.off(fired.from, listener as never));
    }
    this.detachSession = () => offs.forEach((off) => off());
  }

  detach(): void {
    this.detachSession?.();
    this.detachSession = null;
  }

  /** A new handle's: no handlers, numbering from 0 (guestfish's reopen). */
  clear(): void {
    this.handlers = [];
    this.nextHandle = 0;
  }

  add(name: string, eventSet: string, command: string): void {
    this.handlers.push({ name, handle: this.nextHandle++, events: parseEventSet(eventSet), command });
  }

  delete(name: string): void {
    if (!this.handlers.some((h) => h.name === name)) throw new UsageError(`delete-event: ${name}: no such event handler`);
    this.handlers = this.handlers.filter((h) => h.name !== name);
  }

  /** guestfish's listing: `"NAME" (HANDLE): EVENTS: COMMAND`, a name's handlers together, names in the order first registered. */
  list(): string {
    const names = [...new Set(this.handlers.map((h) => h.name))];
    return names
      .flatMap((n) => this.handlers.filter((h) => h.name === n))
      .map((h) => `"${h.name}" (${h.handle}): ${h.events === null ? '*' : h.events.join(',')}: ${h.command}\n`)
      .join('');
  }

  private fire(event: EventName, args: string[]): void {
    const { out, err } = this.streams();
    for (const h of this.handlers) {
      if (h.events !== null && !h.events.includes(event)) continue;
      // Synchronous, as guestfish waits for its handler: the output is in order with the shell's own.
      const r = spawnSync(process.env.SHELL || '/bin/sh', ['-c', h.command, '', ...args], {
        env: { ...process.env, EVENT: event },
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 64 * 1024 * 1024,
      });
      if (r.stdout?.length) out.write(r.stdout);
      if (r.stderr?.length) err.write(r.stderr);
      if (r.error) err.write(`guestsh: event handler "${h.name}" (${event}): ${r.error.message}\n`);
    }
  }
}
