// One guestfsd call on the wire: header + args out, optional FileIn chunks out,
// reply in, optional FileOut chunks in. guestfsd serves one call at a time, so
// calls are queued here; callers may issue them concurrently.

import { CancelledError, GuestfsError, UsageError } from '../errors.js';
import { ChannelClosedError, type DaemonChannel, ProtocolError } from './channel.js';
import { Direction, Status, wire } from './wire.js';
import { XdrReader, XdrWriter } from './xdr.js';

export interface Transfer {
  /** Bytes for a FileIn argument, in any chunking. */
  fileIn?: AsyncIterable<Uint8Array>;
  /** Receives each FileOut chunk; a throw cancels the transfer. */
  fileOut?: (chunk: Buffer) => Promise<void> | void;
  /** Size of the upload, so guestfsd can report progress against it. */
  progressHint?: bigint;
  signal?: AbortSignal | undefined;
}

export interface CallRequest extends Transfer {
  action: string;
  procNr: number;
  args: Uint8Array;
  optargsBitmask: bigint;
}

const HEADER_SIZE = 40;

/** A file chunk (cancel flag, opaque data) framed for the wire, written once into its buffer. */
function chunkMessage(cancel: boolean, data: Uint8Array): Buffer {
  const body = 8 + data.length + ((4 - (data.length % 4)) % 4);
  const out = Buffer.allocUnsafe(4 + body);
  out.writeUInt32BE(body, 0);
  out.writeInt32BE(cancel ? 1 : 0, 4);
  out.writeUInt32BE(data.length, 8);
  out.set(data, 12);
  out.fill(0, 12 + data.length);
  return out;
}

const CANCEL_WORD = new XdrWriter(4).u32(wire.cancelFlag).bytes();

export class Rpc {
  // libguestfs starts its serials at an arbitrary non-zero value; so do we, so
  // that a zeroed reply header can never match.
  private nextSerial = 0x00123400;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly channel: DaemonChannel) {}

  /** Runs a call after every earlier one finished; resolves to the reply body. */
  call(req: CallRequest): Promise<XdrReader> {
    const run = this.queue.then(() => this.run(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(req: CallRequest): Promise<XdrReader> {
    const serial = this.nextSerial++;
    if (HEADER_SIZE + req.args.length > wire.messageMax) {
      throw new UsageError(
        `${req.action}: the arguments take ${req.args.length} bytes, over the ${wire.messageMax}-byte protocol limit; ` +
          'send large data with upload or write it in pieces',
      );
    }
    // Length word, header and arguments written into one buffer, sent in one write.
    const msg = Buffer.allocUnsafe(4 + HEADER_SIZE + req.args.length);
    msg.writeUInt32BE(HEADER_SIZE + req.args.length, 0);
    msg.writeUInt32BE(wire.program, 4);
    msg.writeUInt32BE(wire.version, 8);
    msg.writeUInt32BE(req.procNr, 12);
    msg.writeUInt32BE(Direction.Call, 16);
    msg.writeUInt32BE(serial, 20);
    msg.writeBigUInt64BE(req.progressHint ?? 0n, 24);
    msg.writeBigUInt64BE(req.optargsBitmask, 32);
    msg.writeUInt32BE(Status.Ok, 40);
    msg.set(req.args, 4 + HEADER_SIZE);
    await this.channel.write(msg);

    if (req.fileIn) return this.sendFile(req, serial);
    const reply = await this.readReply(req, serial);
    if (req.fileOut) await this.receiveFile(req);
    return reply;
  }

  private async sendFile(req: CallRequest, serial: number): Promise<XdrReader> {
    const max = wire.maxChunkSize;
    let stop: 'user' | 'daemon' | null = null;
    let sourceError: unknown = null;
    try {
      outer: for await (const piece of req.fileIn!) {
        for (let off = 0; off < piece.length; off += max) {
          if (this.channel.takePendingCancel()) {
            stop = 'daemon';
            break outer;
          }
          if (req.signal?.aborted) {
            stop = 'user';
            break outer;
          }
          await this.channel.write(chunkMessage(false, piece.subarray(off, off + max)));
        }
      }
    } catch (e) {
      if (e instanceof ChannelClosedError) throw e;
      sourceError = e;
    }
    // A zero-length chunk ends the transfer; a cancel chunk aborts it. Either
    // way guestfsd then answers, and that answer must be read to stay in sync.
    await this.channel.write(chunkMessage(stop !== null || sourceError !== null, new Uint8Array(0)));
    const reply = this.readReply(req, serial);
    if (sourceError !== null || stop === 'user') {
      await reply.catch(() => undefined);
      if (sourceError !== null) throw sourceError;
      throw new CancelledError(req.action);
    }
    return reply;
  }

  private async receiveFile(req: CallRequest): Promise<void> {
    let cancelled = false;
    let sinkError: unknown = null;
    for (;;) {
      const f = await this.channel.next();
      if (f.type === 'cancel') continue; // a stale flag; guestfsd ignores these too
      if (f.type !== 'message') throw new ProtocolError(`${req.action}: expected a file chunk, got ${f.type}`);
      const r = new XdrReader(f.body);
      const cancel = r.i32() !== 0;
      const data = r.opaque();
      if (cancel) {
        if (cancelled) break;
        throw new GuestfsError(req.action, '', 'file transfer cancelled by the appliance');
      }
      if (data.length === 0) break;
      if (cancelled) continue;
      if (req.signal?.aborted) {
        cancelled = true;
      } else {
        try {
          await req.fileOut!(data);
        } catch (e) {
          sinkError = e;
          cancelled = true;
        }
      }
      // Ask guestfsd to stop; it acknowledges with a cancel chunk, and the
      // chunks already in flight are drained above.
      if (cancelled) await this.channel.write(CANCEL_WORD);
    }
    if (sinkError !== null) throw sinkError;
    if (cancelled) throw new CancelledError(req.action);
  }

  private async readReply(req: CallRequest, serial: number): Promise<XdrReader> {
    for (;;) {
      const f = await this.channel.next();
      if (f.type === 'cancel') continue;
      if (f.type !== 'message') throw new ProtocolError(`${req.action}: unexpected ${f.type} flag from guestfsd`);
      const r = new XdrReader(f.body);
      const prog = r.u32();
      const vers = r.u32();
      const proc = r.u32();
      const direction = r.u32();
      const replySerial = r.u32();
      r.u64(); // progress hint: meaningful only on calls
      r.u64(); // optargs bitmask: likewise
      const status = r.u32();
      if (prog !== wire.program || vers !== wire.version || direction !== Direction.Reply) {
        throw new ProtocolError(`${req.action}: malformed reply header (program ${prog}, version ${vers})`);
      }
      if (proc !== req.procNr || replySerial !== serial) {
        throw new ProtocolError(
          `${req.action}: reply for procedure ${proc} serial ${replySerial}, expected ${req.procNr} serial ${serial}`,
        );
      }
      if (status === Status.Error) {
        const errno = r.string();
        throw new GuestfsError(req.action, errno, r.string());
      }
      return r;
    }
  }
}
