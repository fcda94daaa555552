// Running one action by name: library-side ones go to their TypeScript
// implementation, daemon ones over the rpc, with FileIn/FileOut arguments
// streamed from and to host files or the caller's transfer, and the
// session's state checked first. Launch itself needs a few daemon calls
// before the session is ready (waiting for hot-plugged disks, setting the
// clock); they take the `duringLaunch` path, which is allowed only then.

import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type ActionCaller, createApi, createInternalApi, type GuestfsApi, type GuestfsInternalApi } from '../../spec/api.js';
import { actionByName } from '../../spec/index.js';
import type { ActionSpec } from '../../spec/types.js';
import type { ArgValue, CallTransfer, OptArgs, RetValue } from '../../spec/values.js';
import { ApplianceError, UsageError } from '../errors.js';
import { ChannelClosedError } from '../protocol/channel.js';
import { decodeRet, encodeArgs } from '../protocol/codec.js';
import type { Vm } from '../qemu/vm.js';
import type { Connection } from './connection.js';
import type { SessionHost } from './host.js';
import { checkOptionalGroup, libraryActions, notSupported } from './library/index.js';
import type { Lifecycle } from './lifecycle.js';
import { writesDisks } from './action-policy.js';
import type { SessionSettings } from './settings.js';

export interface DispatchHost {
  readonly lifecycle: Lifecycle;
  /** What library-side implementations and feature-group checks are handed. */
  readonly library: SessionHost;
  readonly settings: Pick<SessionSettings, 'trace'>;
  connection(): Connection | null;
  emitTrace(line: string): void;
  /** Each call by name, as it starts (libguestfs's enter event). */
  emitEnter(action: string): void;
  /** The appliance died under a call of a ready session: release it and explain. */
  applianceDied(action: string, vm: Vm): Promise<Error>;
}

function isFileArg(sub: string): boolean {
  return sub === 'FileIn' || sub === 'FileOut';
}

export class Dispatcher implements ActionCaller {
  /** The daemon action in flight, named in progress events. */
  currentAction: string | null = null;
  /** Calls of a ready session that may have written to the disks (action-policy.ts's writesDisks), failed ones included. */
  writeCalls = 0;

  constructor(private readonly host: DispatchHost) {}

  /** Daemon actions for launch's own use, while the session is launching. */
  readonly duringLaunch: ActionCaller = {
    call: async (name, args, optargs = {}, transfer = {}) => {
      const action = actionByName(name);
      if (action?.procNr == null) throw new Error(`${name}: launch can only call daemon actions`);
      return this.daemonCall(action, args, optargs, transfer, 'launching');
    },
  };

  async call(name: string, args: readonly ArgValue[] = [], optargs: OptArgs = {}, transfer: CallTransfer = {}): Promise<RetValue> {
    const action = actionByName(name);
    if (!action) throw new UsageError(`unknown action '${name}'`);
    this.host.emitEnter(action.name);
    if (action.procNr !== null) return this.daemonCall(action, args, optargs, transfer, 'ready');
    const impl = libraryActions[action.name];
    if (!impl) throw new UsageError(`${action.name}: not available in guestsh yet`);
    // A refusal says why before any argument is checked (add_libvirt_dom's
    // pointer argument could not be checked anyway).
    const refusal = notSupported[action.name];
    if (refusal) throw new UsageError(`${action.name}: not supported in guestsh: ${refusal}`);
    encodeArgs(action, args, optargs); // validates counts and types the same way as daemon calls
    // The implementation's signature, as generated: arguments, then the
    // options object if the action has optional arguments, then the transfer
    // if it has a FileIn/FileOut argument.
    const trailing: unknown[] = [];
    if (action.optargs.length > 0) trailing.push(optargs);
    if (action.args.some((a) => a.kind === 'String' && isFileArg(a.sub))) trailing.push(transfer);
    const host = transfer.signal || transfer.countBuffered ? this.cancellableHost(transfer) : this.host.library;
    if (!this.host.settings.trace) return impl(host, ...args, ...trailing);
    this.host.emitTrace(traceCall(action, args, optargs));
    let value: RetValue | void;
    try {
      value = await impl(host, ...args, ...trailing);
    } catch (e) {
      this.host.emitTrace(`${action.name} = -1 (error)`);
      throw e;
    }
    this.host.emitTrace(`${action.name} = ${value === undefined ? '0' : traceValue(value)}`);
    return value;
  }

  /**
   * The session as a library-side action sees it, except that every call it
   * makes carries the caller's cancel signal (Ctrl-C during copy_in reaches
   * the tar_in it runs) and reports what it collects in memory to the
   * caller's countBuffered.
   */
  private cancellableHost({ signal, countBuffered }: CallTransfer): SessionHost {
    const caller: ActionCaller = {
      call: (name, args, optargs, transfer = {}) => {
        const { fileOut } = transfer;
        return this.call(name, args, optargs, {
          ...transfer,
          signal: transfer.signal ?? signal,
          countBuffered: transfer.countBuffered ?? countBuffered,
          fileOut:
            fileOut && countBuffered
              ? (chunk) => {
                  countBuffered(chunk.length);
                  return fileOut(chunk);
                }
              : fileOut,
        });
      },
    };
    // Made on first use: the shell passes a signal with every call, and most
    // library-side actions (properties, is_ready, …) make no call at all.
    let g: GuestfsApi | undefined;
    let internal: GuestfsInternalApi | undefined;
    // Everything else is the session itself: its getters and methods run
    // with the session as `this`, so launch or close still change it.
    return new Proxy(this.host.library, {
      get: (session, key) => {
        if (key === 'g') return (g ??= createApi(caller));
        if (key === 'internal') return (internal ??= createInternalApi(caller));
        const value: unknown = Reflect.get(session, key, session);
        return typeof value === 'function' ? value.bind(session) : value;
      },
    });
  }

  private async daemonCall(action: ActionSpec, args: readonly ArgValue[], optargs: OptArgs, transfer: CallTransfer, state: 'ready' | 'launching'): Promise<RetValue> {
    // The arguments first, as libguestfs checks them before whether the appliance is up.
    const { bytes, bitmask } = encodeArgs(action, args, optargs);
    this.host.lifecycle.assert(action.name, state);
    const conn = this.host.connection();
    if (!conn) throw new Error(`${action.name}: no appliance attached in state ${state} (guestsh bug)`);
    if (action.optional) await checkOptionalGroup(this.host.library, action);
    const fileInIndex = action.args.findIndex((a) => a.kind === 'String' && a.sub === 'FileIn');
    const fileOutIndex = action.args.findIndex((a) => a.kind === 'String' && a.sub === 'FileOut');
    let fileIn: AsyncIterable<Uint8Array> | undefined;
    let progressHint: bigint | undefined;
    if (fileInIndex >= 0 && transfer.fileIn) {
      fileIn = transfer.fileIn;
    } else if (fileInIndex >= 0) {
      const hostPath = args[fileInIndex] as string;
      const st = await stat(hostPath).catch(() => null);
      if (!st) throw new UsageError(`${action.name}: host file '${hostPath}' does not exist`);
      progressHint = st.isFile() ? BigInt(st.size) : 0n;
      fileIn = createReadStream(hostPath, { highWaterMark: 64 * 1024 });
    }
    let out: ReturnType<typeof createWriteStream> | undefined;
    // A host file that cannot be written (a full disk, a missing directory)
    // fails this call with one line; the stream's error never goes unheard.
    let outError: UsageError | null = null;
    if (fileOutIndex >= 0 && !transfer.fileOut) {
      const hostPath = args[fileOutIndex] as string;
      out = createWriteStream(hostPath);
      out.on('error', (e: NodeJS.ErrnoException) => {
        outError ??= new UsageError(`${action.name}: cannot write host file '${hostPath}': ${e.code ?? 'error'} (${describeErrno(e)})`);
      });
    }
    if (this.host.settings.trace) this.host.emitTrace(traceCall(action, args, optargs));
    this.currentAction = action.name;
    // Counted before the reply: a write that fails or is cancelled half-way may have written part.
    if (state === 'ready' && writesDisks(action)) this.writeCalls++;
    try {
      const reply = await conn.rpc.call({
        action: action.name,
        procNr: action.procNr!,
        args: bytes,
        optargsBitmask: bitmask,
        fileIn,
        progressHint,
        signal: transfer.signal,
        fileOut: transfer.fileOut ?? (out
          ? (chunk) =>
              new Promise<void>((resolve, reject) => {
                if (outError) return reject(outError);
                out!.write(chunk, (e) => (e ? reject(outError ?? e) : resolve()));
              })
          : undefined),
      });
      const value = decodeRet(action.ret, reply);
      // Written and closed before the call counts as done: a late open or close error is this call's.
      if (out) {
        const closing = out;
        out = undefined;
        await endStream(closing);
      }
      if (outError) throw outError;
      if (this.host.settings.trace) this.host.emitTrace(`${action.name} = ${traceValue(value)}`);
      return value;
    } catch (e) {
      // The host side failed first: that is the news (the daemon's reply to a cancelled transfer is not).
      if (outError) throw outError;
      if (!(e instanceof ChannelClosedError)) throw e;
      // While launching, launch gives the VM up itself (and may boot another).
      if (state === 'launching') throw new ApplianceError(`${action.name}: the appliance died: ${conn.vm.describeExit()}`);
      throw await this.host.applianceDied(action.name, conn.vm);
    } finally {
      this.currentAction = null;
      if (out) await endStream(out);
    }
  }
}

function endStream(out: ReturnType<typeof createWriteStream>): Promise<void> {
  if (out.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => out.end(() => resolve()));
}

/** An errno's text as the user reads it: "no space left on device". */
function describeErrno(e: NodeJS.ErrnoException): string {
  const m = /^[A-Z0-9]+: ([^,]+)/.exec(e.message);
  return (m ? m[1]! : e.message).toLowerCase();
}

/**
 * A call as libguestfs's trace prints it: the arguments, then each optional
 * argument given as "name:value", in the spec's order.
 */
function traceCall(action: ActionSpec, args: readonly ArgValue[], optargs: OptArgs): string {
  // A boolean argument reads true/false, as libguestfs traces it (its result reads 1/0).
  const words = args.map((a) => (typeof a === 'boolean' ? String(a) : traceValue(a as RetValue)));
  for (const o of action.optargs) {
    const v = optargs[o.name];
    if (v !== undefined) words.push(JSON.stringify(`${o.name}:${String(v)}`));
  }
  return [action.name, ...words].join(' ');
}

function traceValue(v: RetValue): string {
  if (Buffer.isBuffer(v)) return `<${v.length} bytes>`;
  // As libguestfs traces a boolean result (an int in C).
  if (typeof v === 'boolean') return v ? '1' : '0';
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
}
