// A QMP client: newline-delimited JSON over qemu's control socket. Replies are
// matched by id; events are re-emitted. Every command has a timeout.

import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplianceError } from '../errors.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** The socket closed: qemu has gone (or is going) away. */
export class QmpClosedError extends ApplianceError {
  override name = 'QmpClosedError';
}

export class Qmp extends EventEmitter<{ event: [QmpEvent] }> {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private buffered = '';
  private greeted: Promise<void>;

  private constructor(private readonly socket: Socket) {
    super();
    let onGreeting: () => void = () => {};
    let onNoGreeting: (e: Error) => void = () => {};
    this.greeted = new Promise((resolve, reject) => {
      onGreeting = resolve;
      onNoGreeting = reject;
    });
    this.greeted.catch(() => undefined); // connect() awaits it; a close after the greeting changes nothing
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffered += d;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl).trim();
        this.buffered = this.buffered.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('QMP' in msg) onGreeting();
        else if ('event' in msg) this.emit('event', msg as unknown as QmpEvent);
        else this.settle(msg);
      }
    });
    socket.on('close', () => {
      const closed = new QmpClosedError('the QMP connection to qemu closed');
      // A qemu killed between accepting the connection and greeting: no wait for a greeting that cannot come.
      onNoGreeting(closed);
      this.failAll(closed);
    });
    socket.on('error', () => undefined); // 'close' follows and reports it
  }

  private settle(msg: Record<string, unknown>): void {
    const p = this.pending.get(msg.id as number);
    if (!p) return;
    this.pending.delete(msg.id as number);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new ApplianceError(`qemu refused: ${err.desc ?? err.class ?? 'unknown error'}`));
    } else {
      p.resolve(msg.return);
    }
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
  }

  /** Connects once qemu has created the socket, and negotiates capabilities. */
  static async connect(path: string, timeoutMs: number, cancel?: AbortSignal): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (cancel?.aborted) throw new ApplianceError('QMP connection abandoned: qemu is gone');
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(socket);
        const timeout = new AbortController();
        try {
          await Promise.race([
            qmp.greeted,
            // Abortable, so a pending timer never keeps the process alive.
            sleep(Math.max(0, deadline - Date.now()), undefined, { signal: cancel ? AbortSignal.any([timeout.signal, cancel]) : timeout.signal }).then(() => {
              throw new ApplianceError('qemu did not greet on the QMP socket');
            }),
          ]);
        } finally {
          timeout.abort();
        }
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (e) {
        if (e instanceof ApplianceError) throw e;
        if (Date.now() > deadline) throw new ApplianceError(`could not connect to qemu's QMP socket within ${timeoutMs} ms`);
        await sleep(5);
      }
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    const id = this.nextId++;
    // A write to a closed socket is never answered: fail now, not at the timeout.
    if (this.socket.destroyed) return Promise.reject(new QmpClosedError('the QMP connection to qemu closed'));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApplianceError(`qemu did not answer ${command} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
