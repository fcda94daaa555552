// Framing for guestfsd's virtio-serial stream. Every unit on the wire starts
// with a 32-bit word: a length (a message follows), or one of three flags that
// are larger than any legal length (launch, cancel, progress). This module turns
// the byte stream into those units and nothing more; what a unit means for a
// call is rpc.ts's business.

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { wire } from './wire.js';
import { XdrReader } from './xdr.js';

export interface ProgressMessage {
  proc: number;
  serial: number;
  position: bigint;
  total: bigint;
}

export type Frame = { type: 'message'; body: Buffer } | { type: 'cancel' } | { type: 'launch' };

/** The stream ended or broke; `reason` says why, for the user. */
export class ChannelClosedError extends Error {
  override name = 'ChannelClosedError';
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

const PROGRESS_SIZE = 24;

// Frames nobody has asked for yet are held in memory; past the high mark the
// socket is paused until the reader is down to the low mark. A download to a
// slow receiver then paces guestfsd (it blocks writing to the virtio-serial
// port) instead of piling the file up in this process. 512 frames is 4 MiB of
// FileOut chunks.
const HIGH_WATER_FRAMES = 512;
const LOW_WATER_FRAMES = 128;

interface Waiter {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
}

export interface DaemonChannelEvents {
  progress: [ProgressMessage];
}

export class DaemonChannel extends EventEmitter<DaemonChannelEvents> {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private frames: Frame[] = [];
  private waiters: Waiter[] = [];
  private failure: Error | null = null;
  private paused = false;

  constructor(
    private readonly socket: Socket,
    /** Called when the stream ends, to explain why (qemu's exit, console tail). */
    private readonly explainClose: () => string,
  ) {
    super();
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.fail(new ChannelClosedError(`${this.explainClose()} (${e.message})`)));
    socket.on('close', () => this.fail(new ChannelClosedError(this.explainClose())));
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    try {
      this.parse();
    } catch (e) {
      this.fail(e as Error);
      this.socket.destroy();
    }
  }

  /**
   * The next `n` buffered bytes. A view when one chunk holds them all, else
   * just those bytes joined (the chunks after them are left as they are).
   * No copy is needed for a view: each socket read is its own allocation,
   * which nothing writes to again, and a frame keeps it alive only until
   * the frame is consumed.
   */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const used = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, used);
        filled += used;
        if (used === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(used);
      }
    }
    this.buffered -= n;
    return out;
  }

  private peekWord(): number | null {
    if (this.buffered < 4) return null;
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, this.buffered).subarray(0, 4).readUInt32BE(0);
  }

  private parse(): void {
    for (;;) {
      const word = this.peekWord();
      if (word === null) return;
      if (word === wire.launchFlag) {
        this.take(4);
        this.push({ type: 'launch' });
      } else if (word === wire.cancelFlag) {
        this.take(4);
        this.push({ type: 'cancel' });
      } else if (word === wire.progressFlag) {
        if (this.buffered < 4 + PROGRESS_SIZE) return;
        this.take(4);
        const r = new XdrReader(this.take(PROGRESS_SIZE));
        this.emit('progress', { proc: r.u32(), serial: r.u32(), position: r.u64(), total: r.u64() });
      } else if (word > wire.messageMax) {
        throw new ProtocolError(
          `guestfsd sent a ${word}-byte message, over the ${wire.messageMax}-byte protocol limit; the session is out of sync`,
        );
      } else {
        if (this.buffered < 4 + word) return;
        this.take(4);
        this.push({ type: 'message', body: this.take(word) });
      }
    }
  }

  private push(f: Frame): void {
    const w = this.waiters.shift();
    if (w) {
      w.resolve(f);
      return;
    }
    this.frames.push(f);
    if (!this.paused && this.frames.length >= HIGH_WATER_FRAMES) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  get closed(): boolean {
    return this.failure !== null;
  }

  /** Next frame; rejects when the stream ends or after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Frame> {
    const queued = this.frames.shift();
    if (this.paused && this.frames.length <= LOW_WATER_FRAMES) {
      this.paused = false;
      this.socket.resume();
    }
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Frame>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (timeoutMs !== undefined) {
        const timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new ChannelClosedError(`no answer from guestfsd within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter.resolve = (f) => (clearTimeout(timer), resolve(f));
        waiter.reject = (e) => (clearTimeout(timer), reject(e));
      }
      this.waiters.push(waiter);
    });
  }

  /** A cancel flag the daemon already sent, consumed if present. */
  takePendingCancel(): boolean {
    const i = this.frames.findIndex((f) => f.type === 'cancel');
    if (i < 0) return false;
    this.frames.splice(i, 1);
    return true;
  }

  /** Write, honouring backpressure so a 64 MiB upload never sits in memory. */
  async write(data: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.socket.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = (): void => (cleanup(), resolve());
      const onClose = (): void => (cleanup(), reject(this.failure ?? new ChannelClosedError(this.explainClose())));
      const cleanup = (): void => {
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
      };
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
