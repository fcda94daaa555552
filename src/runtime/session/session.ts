// The guestfs handle: drives and settings while in config, an appliance VM while
// ready. States move config → launching → ready → closed and every operation
// states which states it is valid in, so a wrong-order call fails with a clear
// message instead of a hang.

import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultMemoryMiB } from '../../../guests/libguestfs/appliance.js';
import { createApi, type GuestfsApi } from '../../spec/api.js';
import { actionByName } from '../../spec/index.js';
import type { ActionSpec } from '../../spec/types.js';
import { ensureAppliance } from '../appliance/build.js';
import { ApplianceError, GuestfsError, UsageError } from '../errors.js';
import type { ArgValue, OptArgs, RetValue } from '../../spec/values.js';
import { decodeRet, encodeArgs } from '../protocol/codec.js';
import { ChannelClosedError } from '../protocol/channel.js';
import { Rpc } from '../protocol/rpc.js';
import { chooseAccel } from '../qemu/accel.js';
import { type DriveConfig, Vm, type VmConfig } from '../qemu/vm.js';
import { releaseWatchdogs, watchRunDir } from '../qemu/watchdog.js';
import { ensureSnapshot } from '../qemu/snapshot.js';
import { createDisk, createOverlay, probeImage } from '../qemu/img.js';
import { checkOptionalGroup, libraryActions, notSupported } from './library/index.js';
import { Transaction } from './transaction.js';
import { changesAgainstBase, type FileChange } from './changes.js';

export type SessionState = 'config' | 'launching' | 'ready' | 'closed';

export interface DriveOptions {
  format?: string | undefined;
  readonly?: boolean | undefined;
  label?: string | undefined;
}

export interface Drive {
  /** What the user added (for messages and status). */
  path: string;
  format: string;
  readonly: boolean;
  label: string | undefined;
  /** What qemu opens: the transaction's overlay, or a throwaway overlay (read-only). */
  qemu: DriveConfig;
  /** The all-or-nothing write to the image, for read-write drives. */
  tx: Transaction | null;
  /**
   * qcow2 files qemu writes through, bottom first: the transaction overlay,
   * then one layer per savepoint since. The last is the active one.
   */
  layers: string[];
  /** QMP name of the active (top) block node. */
  top: string;
}

interface Savepoint {
  name: string;
  /** Per drive index: how many layers existed when it was taken (the last of them is frozen since). */
  depth: Map<number, number>;
}

/** guestsh's own operations, beside libguestfs's on `session.g`. */
export interface SessionControls {
  savepoint(name: string): Promise<void>;
  rollbackTo(name: string): Promise<void>;
}

export interface ProgressEvent {
  action: string;
  position: bigint;
  total: bigint;
}

export interface SessionEvents {
  progress: [ProgressEvent];
  /** Appliance serial console lines (shown with -v). */
  console: [string];
  /** One line per call and result (shown with -x). */
  trace: [string];
  /** Notices for the user, such as the TCG fallback. */
  notice: [string];
  /** A read-write image's changes are being merged into it (journal written next). */
  commit: [{ image: string }];
}

export interface CallTransfer {
  signal?: AbortSignal | undefined;
  /** In-memory data for a FileIn argument instead of reading its host path. */
  fileIn?: AsyncIterable<Uint8Array> | undefined;
  /** In-memory receiver for a FileOut argument instead of writing its host path. */
  fileOut?: ((chunk: Buffer) => void | Promise<void>) | undefined;
}

export interface SessionSettings {
  memsize: number;
  smp: number;
  verbose: boolean;
  trace: boolean;
  autosync: boolean;
  network: boolean;
  launchTimeoutMs: number;
  /** Resume a saved appliance instead of booting (GUESTSH_SNAPSHOT=0 turns it off). */
  snapshots: boolean;
  /**
   * Write through an overlay that shutdown() merges into the image and
   * close() without shutdown discards. Off: qemu writes the image directly.
   */
  transactions: boolean;
}

export type LaunchStats =
  | { mode: 'boot'; bootMs: number }
  | { mode: 'snapshot'; snapshotMs: number; restoreMs: number; hotplugMs: number; settleMs: number };

const HOTPLUG_SETTLE_MS = 30_000;

/**
 * A shell loop for the appliance that waits (10 ms steps, bounded by
 * HOTPLUG_SETTLE_MS) until `test` holds: one round trip instead of polling
 * over the wire.
 */
function inGuestUntil(test: string): string {
  return `i=0; until ${test} || [ $i -ge ${HOTPLUG_SETTLE_MS / 10} ]; do sleep 0.01; i=$((i+1)); done`;
}

/** The appliance's name for the i-th user disk (0 → sda); past 26 the kernel goes on sdaa. */
function diskName(i: number): string {
  const letters = (n: number): string => (n < 26 ? String.fromCharCode(0x61 + n) : letters(Math.floor(n / 26) - 1) + letters(n % 26));
  return `sd${letters(i)}`;
}

// Sessions still holding a VM or temp files; reaped if the process exits.
const live = new Set<Session>();
process.on('exit', () => {
  for (const s of live) s.reapNow();
});

export class Session extends EventEmitter<SessionEvents> {
  private stateValue: SessionState = 'config';
  readonly drives: Drive[] = [];
  readonly settings: SessionSettings = {
    memsize: defaultMemoryMiB,
    smp: 1,
    verbose: false,
    trace: false,
    autosync: true,
    network: false,
    launchTimeoutMs: Number(process.env.GUESTSH_LAUNCH_TIMEOUT ?? 300) * 1000,
    snapshots: process.env.GUESTSH_SNAPSHOT !== '0',
    transactions: true,
  };
  /** Every public libguestfs action as a typed method, e.g. `await s.g.mkfs('ext4', '/dev/sda1', { label: 'root' })`. */
  readonly g: GuestfsApi & SessionControls = Object.freeze({
    ...createApi(this),
    savepoint: (name: string) => this.savepoint(name),
    rollbackTo: (name: string) => this.rollbackTo(name),
  });
  private runDir: string | null = null;
  private vm: Vm | null = null;
  private rpc: Rpc | null = null;

  get state(): SessionState {
    return this.stateValue;
  }

  /** The private temp directory (sockets, overlays), while one exists. */
  get runDirectory(): string | null {
    return this.runDir;
  }

  /** The qemu process id while the appliance runs (for tests and `status`). */
  get qemuPid(): number | null {
    return this.vm?.pid ?? null;
  }

  assertState(op: string, ...states: SessionState[]): void {
    if (states.includes(this.stateValue)) return;
    const hint: Record<SessionState, string> = {
      config: 'launch the appliance first (run or launch)',
      launching: 'wait for launch to finish',
      ready: 'this can only be done before launch',
      closed: 'the session is closed; open a new one',
    };
    throw new UsageError(`${op}: not allowed in state ${this.stateValue}: ${hint[this.stateValue]}`);
  }

  private async ensureRunDir(): Promise<string> {
    if (!this.runDir) {
      this.runDir = await mkdtemp(join(tmpdir(), 'guestsh-'));
      watchRunDir(this.runDir);
      live.add(this);
    }
    return this.runDir;
  }

  async addDrive(path: string, opts: DriveOptions = {}): Promise<void> {
    this.assertState('add_drive', 'config');
    const info = await probeImage(path, opts.format);
    const format = opts.format ?? info.format;
    const readonly = opts.readonly ?? false;
    let qemu: DriveConfig;
    if (readonly) {
      // Like libguestfs: the guest may write (journal replay, for instance),
      // but the writes land in an overlay that is thrown away.
      const overlay = join(await this.ensureRunDir(), `overlay${this.drives.length}.qcow2`);
      await createOverlay(path, format, overlay);
      qemu = { file: overlay, format: 'qcow2', cache: 'unsafe', readonly: false, serial: opts.label };
      this.drives.push({ path, format, readonly, label: opts.label, qemu, tx: null, layers: [], top: '' });
      return;
    }
    if (!this.settings.transactions) {
      qemu = { file: path, format, cache: 'writeback', readonly: false, serial: opts.label };
      this.drives.push({ path, format, readonly, label: opts.label, qemu, tx: null, layers: [], top: '' });
      return;
    }
    const tx = await Transaction.begin(path, format);
    live.add(this);
    if (tx.recovered === 'rolled-forward') this.emit('notice', `completed an interrupted commit of '${path}' first`);
    if (tx.recovered === 'discarded-abandoned-run') {
      this.emit('notice', `removed the uncommitted changes an interrupted run left beside '${path}'`);
    }
    qemu = { file: tx.files.overlay, format: 'qcow2', cache: 'writeback', readonly: false, serial: opts.label };
    this.drives.push({ path, format, readonly, label: opts.label, qemu, tx, layers: [tx.files.overlay], top: `hd${this.drives.length}` });
  }

  /** A temporary blank disk that disappears with the session. */
  async addDriveScratch(sizeBytes: bigint | number, opts: { label?: string } = {}): Promise<void> {
    this.assertState('add_drive_scratch', 'config');
    const file = join(await this.ensureRunDir(), `scratch${this.drives.length}.qcow2`);
    await createDisk(file, 'qcow2', sizeBytes);
    this.drives.push({
      path: file,
      format: 'qcow2',
      readonly: false,
      label: opts.label,
      qemu: { file, format: 'qcow2', cache: 'unsafe', readonly: false, serial: opts.label },
      tx: null,
      layers: [],
      top: '',
    });
  }

  async launch(): Promise<void> {
    this.assertState('launch', 'config');
    if (this.drives.length === 0) throw new UsageError('launch: add at least one drive first (-a IMAGE)');
    this.stateValue = 'launching';
    try {
      const appliance = await ensureAppliance((l) => this.emit('notice', l));
      const accel = await chooseAccel(appliance.kernel);
      if (accel.probed && accel.accel === 'tcg') this.emit('notice', accel.reason);
      if (this.settings.verbose) this.emit('console', `guestsh: ${accel.reason}`);
      const cfg: VmConfig = {
        appliance,
        drives: this.drives.map((d) => d.qemu),
        accel: accel.accel,
        memoryMiB: this.settings.memsize,
        smp: this.settings.smp,
        verbose: this.settings.verbose,
        network: this.settings.network,
        runDir: await this.ensureRunDir(),
        launchTimeoutMs: this.settings.launchTimeoutMs,
        onConsole: (l) => this.emit('console', l),
      };
      let resumed = false;
      if (this.settings.snapshots) {
        try {
          await this.resumeSnapshot(cfg);
          resumed = true;
        } catch (e) {
          this.vm?.kill();
          this.vm = null;
          if (this.settings.verbose) this.emit('console', `guestsh: resuming a saved appliance failed, booting instead: ${(e as Error).message}`);
        }
      }
      if (!resumed) {
        const started = Date.now();
        this.attach(await Vm.start(cfg));
        this.launchStats = { mode: 'boot', bootMs: Date.now() - started };
      }
      this.stateValue = 'ready';
    } catch (e) {
      this.vm?.kill();
      this.vm = null;
      this.stateValue = 'config';
      throw e;
    }
  }

  /**
   * Waits inside the guest (one round trip, no polling over the wire) until
   * the kernel has created `count` SCSI disks and udev has settled.
   */
  private async waitForDisks(count: number): Promise<void> {
    const last = `/dev/${diskName(count - 1)}`;
    // Each disk with its SCSI address (host:channel:target:lun); disk i sits at target i.
    const settle = `${inGuestUntil(`[ -b ${last} ]`)}; udevadm settle; for b in /sys/block/sd*; do echo "\${b##*/} $(basename "$(readlink "$b/device")")"; done`;
    const blocks = (await this.guestShell(settle)).split('\n').filter((l) => l.startsWith('sd')).map((l) => l.split(' ') as [string, string]);
    if (blocks.length !== count) throw new ApplianceError(`the appliance saw ${blocks.length} of ${count} plugged drives`);
    for (const [name, address] of blocks) {
      const target = Number(address.split(':')[2]);
      if (name !== diskName(target)) {
        throw new ApplianceError(`the appliance named the disk at SCSI target ${target} ${name}, not ${diskName(target)}; device names would not match the drive order (launch again)`);
      }
    }
  }

  /**
   * Plugs another image into the running appliance, read-only through a
   * throwaway overlay, after the session's own drives. Returns its device.
   */
  async attachReadOnly(path: string, format?: string): Promise<string> {
    this.assertState('attach', 'ready');
    const info = await probeImage(path, format);
    const i = this.drives.length + this.attached++;
    const overlay = join(this.runDir!, `attached${i}.qcow2`);
    await createOverlay(path, format ?? info.format, overlay);
    await this.vm!.plug(i, { file: overlay, format: 'qcow2', cache: 'unsafe', readonly: false }, `at${i}`);
    await this.guestShell(`${inGuestUntil(`[ -b /dev/${diskName(i)} ]`)}; udevadm settle`);
    return `/dev/${diskName(i)}`;
  }

  private attached = 0;

  /** Unplugs the drive attachReadOnly() added last and deletes its throwaway overlay. */
  async detachReadOnly(device: string): Promise<void> {
    this.assertState('detach', 'ready');
    const i = this.drives.length + this.attached - 1;
    if (this.attached === 0 || device !== `/dev/${diskName(i)}`) throw new UsageError(`detach: ${device} is not the drive attached last`);
    await this.vm!.unplug(i);
    await this.guestShell(inGuestUntil(`[ ! -b ${device} ]`));
    await this.vm!.removeNode(`at${i}`);
    await rm(join(this.runDir!, `attached${i}.qcow2`), { force: true });
    this.attached--;
  }

  /**
   * Files added, removed and modified on the read-write drives so far,
   * compared with the images as they were (what --dry-run reports).
   */
  changes(): Promise<FileChange[]> {
    this.assertState('changes', 'ready');
    return changesAgainstBase(this);
  }

  /** Runs a shell snippet in the appliance (guestfsd's debug sh), for orchestration only. */
  private async guestShell(script: string): Promise<string> {
    return (await this.call('debug', ['sh', [script]])) as string;
  }

  private savepoints: Savepoint[] = [];

  /**
   * Marks the current state of every read-write drive; rollbackTo(name)
   * returns to it. Costs one new qcow2 layer per drive, no copying.
   */
  async savepoint(name: string): Promise<void> {
    this.assertState('savepoint', 'ready');
    const writable = [...this.drives.entries()].filter(([, d]) => d.tx);
    if (writable.length === 0) throw new UsageError('savepoint: no read-write drive to mark (savepoints work on transactional drives)');
    this.savepoints = this.savepoints.filter((p) => p.name !== name);
    await this.call('sync');
    const depth = new Map<number, number>();
    const n = this.savepointCounter++;
    for (const [i, d] of writable) {
      depth.set(i, d.layers.length);
      const file = join(this.runDir!, `savepoint${n}-${i}.qcow2`);
      d.top = await this.vm!.addLayer(d.top, file, `sp${n}d${i}`);
      d.layers.push(file);
    }
    this.savepoints.push({ name, depth });
  }

  private savepointCounter = 0;

  /**
   * Returns every read-write drive to savepoint `name`, in the same session:
   * filesystems are unmounted, the disks swapped for fresh layers over the
   * savepoint's state, and the filesystems mounted again where they were.
   * Savepoints taken after `name` are forgotten.
   */
  async rollbackTo(name: string): Promise<void> {
    this.assertState('rollback', 'ready');
    const at = this.savepoints.findIndex((p) => p.name === name);
    if (at < 0) {
      const known = this.savepoints.map((p) => p.name).join(', ') || 'none';
      throw new UsageError(`rollback: no savepoint named '${name}' (savepoints: ${known})`);
    }
    const sp = this.savepoints[at]!;
    const mounts = Object.entries((await this.call('mountpoints')) as Record<string, string>);
    await this.call('umount_all');
    const n = this.savepointCounter++;
    // Out first, all of them, then back in one at a time: the guest names a
    // disk by the lowest free sdX, so this order gives every disk its name back.
    for (const i of sp.depth.keys()) await this.vm!.unplug(i);
    const gone = [...sp.depth.keys()].map((i) => `/dev/${diskName(i)}`).join(' ');
    await this.guestShell(`for d in ${gone}; do ${inGuestUntil('[ ! -b $d ]')}; done`);
    for (const [i, depth] of sp.depth) {
      const d = this.drives[i]!;
      // A fresh layer over the savepoint's frozen one: what was written
      // since is left behind in the discarded layers.
      const frozen = d.layers[depth - 1]!;
      const file = join(this.runDir!, `rollback${n}-${i}.qcow2`);
      await createOverlay(frozen, 'qcow2', file);
      const node = `rb${n}d${i}`;
      await this.vm!.plug(i, { ...d.qemu, file, format: 'qcow2' }, node);
      await this.guestShell(`${inGuestUntil(`[ -b /dev/${diskName(i)} ]`)}; udevadm settle`);
      d.layers.splice(depth, Infinity, file);
      d.top = node;
    }
    this.savepoints.splice(at + 1);
    await this.waitForDisks(this.drives.length + this.attached);
    mounts.sort(([, a], [, b]) => a.length - b.length);
    for (const [device, mountpoint] of mounts) await this.call('mount', [device, mountpoint]);
  }

  /** How the last launch went, for -v and the benchmarks. */
  launchStats: LaunchStats | null = null;

  private attach(vm: Vm): void {
    this.vm = vm;
    vm.channel!.on('progress', (p) => {
      this.emit('progress', { action: this.currentAction ?? '', position: p.position, total: p.total });
    });
    this.rpc = new Rpc(vm.channel!);
  }

  /**
   * Restores the saved appliance, plugs the drives in, and makes the guest
   * fresh: its clock set to now, its random generator reseeded (vmgenid), its
   * devices settled.
   */
  private async resumeSnapshot(cfg: VmConfig): Promise<void> {
    const t0 = Date.now();
    const snap = await ensureSnapshot(cfg, (l) => this.emit('notice', l));
    const t1 = Date.now();
    this.attach(await Vm.restore({ ...cfg, drives: [], root: { file: snap.root, format: 'qcow2', throwaway: true } }, snap.state));
    const t2 = Date.now();
    // The first disk goes in before the guest runs; each further one once the
    // disk before it has its name. The guest names disks in the order it
    // finishes probing them, and two probed together can swap names (a CI
    // rehearsal saw the blank second disk come up as sda).
    const [first, ...more] = cfg.drives;
    if (first) await this.vm!.plug(0, first, 'hd0');
    await this.vm!.resume();
    const t3 = Date.now();
    this.stateValue = 'ready';
    for (const [j, d] of more.entries()) {
      await this.guestShell(inGuestUntil(`[ -b /dev/${diskName(j)} ]`));
      await this.vm!.plug(j + 1, d, `hd${j + 1}`);
    }
    await this.waitForDisks(cfg.drives.length);
    // The guest's clock stopped when it was saved; a call takes milliseconds,
    // so setting it last leaves it that close to the host's.
    const now = Date.now();
    await this.call('debug', ['sh', [`date -u -s @${Math.floor(now / 1000)}.${String(now % 1000).padStart(3, '0')} >/dev/null`]]);
    this.launchStats = { mode: 'snapshot', snapshotMs: t1 - t0, restoreMs: t2 - t1, hotplugMs: t3 - t2, settleMs: Date.now() - t3 };
  }

  private currentAction: string | null = null;

  /** Calls any action by name (snake_case, kebab-case or alias). */
  async call(name: string, args: readonly ArgValue[] = [], optargs: OptArgs = {}, transfer: CallTransfer = {}): Promise<RetValue> {
    const action = actionByName(name);
    if (!action) throw new UsageError(`unknown action '${name}'`);
    if (action.procNr !== null) return this.daemonCall(action, args, optargs, transfer);
    const impl = libraryActions[action.name];
    if (!impl) throw new UsageError(`${action.name}: not available in guestsh yet`);
    // A refusal says why before any argument is checked (add_libvirt_dom's
    // pointer argument could not be checked anyway).
    const refusal = notSupported[action.name];
    if (refusal) throw new UsageError(`${action.name}: not supported in guestsh: ${refusal}`);
    encodeArgs(action, args, optargs); // validates counts and types the same way as daemon calls
    return impl(this, args, optargs);
  }

  private async daemonCall(action: ActionSpec, args: readonly ArgValue[], optargs: OptArgs, transfer: CallTransfer): Promise<RetValue> {
    this.assertState(action.name, 'ready');
    await checkOptionalGroup(this, action);
    const { bytes, bitmask } = encodeArgs(action, args, optargs);
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
    if (fileOutIndex >= 0 && !transfer.fileOut) out = createWriteStream(args[fileOutIndex] as string);
    if (this.settings.trace) this.emit('trace', `${action.name} ${args.map((a) => JSON.stringify(a)).join(' ')}`);
    this.currentAction = action.name;
    try {
      const reply = await this.rpc!.call({
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
                out!.write(chunk, (e) => (e ? reject(e) : resolve()));
              })
          : undefined),
      });
      const value = decodeRet(action.ret, reply);
      if (this.settings.trace) this.emit('trace', `${action.name} = ${traceValue(value)}`);
      return value;
    } catch (e) {
      if (e instanceof ChannelClosedError) throw await this.applianceDied(action.name);
      throw e;
    } finally {
      this.currentAction = null;
      if (out) await new Promise<void>((resolve) => out!.end(resolve));
    }
  }

  /** The VM went away under a call: explain why, then release everything. */
  private async applianceDied(action: string): Promise<ApplianceError> {
    const vm = this.vm!;
    // Closed from here on: nothing may try to talk to this VM again (not even
    // shutdown's autosync).
    this.stateValue = 'closed';
    // The socket usually closes a moment before qemu's exit status arrives.
    await Promise.race([vm.exited, sleep(1000, undefined, { ref: false })]);
    const err = new ApplianceError(`${action}: the appliance died: ${vm.describeExit()}`);
    await this.close();
    return err;
  }

  /**
   * The successful end of a session: syncs and unmounts (autosync), stops qemu
   * cleanly, and commits every read-write image's changes.
   */
  async shutdown(): Promise<void> {
    if (this.stateValue === 'ready' && this.vm) {
      if (this.settings.autosync) {
        try {
          await this.call('internal_autosync');
        } catch (e) {
          if (!(e instanceof GuestfsError)) throw e;
          // A failed umount still leaves the data synced; qemu's quit flushes too.
        }
      }
      await this.vm.quit();
      this.vm = null;
      this.rpc = null;
      this.stateValue = 'closed';
      // qemu has closed the overlays: the run succeeded, make it permanent.
      for (const d of this.drives) {
        if (!d.tx?.open) continue;
        this.emit('commit', { image: d.path });
        await d.tx.commit(d.layers.at(-1));
      }
    }
    this.vm?.kill();
    this.vm = null;
    this.rpc = null;
    if (this.stateValue !== 'config') this.stateValue = 'closed';
  }

  /**
   * Ends the session. Changes not committed by shutdown() are discarded, so
   * an error path that only closes leaves every image as it was. Safe to call twice.
   */
  async close(): Promise<void> {
    try {
      // Nothing of the guest's will be kept, so there is nothing to sync.
      await this.vm?.quit();
    } finally {
      this.vm?.kill();
      if (this.vm) await this.vm.exited;
      this.vm = null;
      this.stateValue = 'closed';
      // Whatever was not committed by shutdown() is thrown away.
      for (const d of this.drives) await d.tx?.discard();
      if (this.runDir) {
        await rm(this.runDir, { recursive: true, force: true });
        releaseWatchdogs(this.runDir);
      }
      this.runDir = null;
      live.delete(this);
    }
  }

  /** Synchronous last-resort cleanup for process exit. */
  reapNow(): void {
    this.vm?.kill();
    for (const d of this.drives) d.tx?.discardNow();
    if (this.runDir) rmSync(this.runDir, { recursive: true, force: true });
  }
}

function traceValue(v: RetValue): string {
  if (Buffer.isBuffer(v)) return `<${v.length} bytes>`;
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
}
