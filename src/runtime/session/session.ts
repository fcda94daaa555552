// The guestfs handle as one object: drives and settings while in config, an
// appliance VM while ready. The jobs live in their own modules (the state
// table in lifecycle.ts, dispatch in dispatch.ts, resume and hot-plug,
// savepoints); this class owns the session's resources and decides, in
// launch/shutdown/close, when each is acquired and released.

import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApi, createInternalApi, type GuestfsApi, type GuestfsInternalApi } from '../../spec/api.js';
import type { ArgValue, CallTransfer, OptArgs, RetValue } from '../../spec/values.js';
import { type ApplianceUse, useAppliance } from '../appliance/build.js';
import { ApplianceError, GuestfsError, UsageError } from '../errors.js';
import { chooseAccel } from '../qemu/accel.js';
import { Vm, type VmConfig } from '../qemu/vm.js';
import { releaseWatchdogs, watchRunDir } from '../qemu/watchdog.js';
import { changesAgainstBase, type FileChange } from './changes.js';
import { Connection } from './connection.js';
import { Dispatcher } from './dispatch.js';
import { type Drive, type DriveOptions, openDrive, scratchDrive } from './drives.js';
import type { SessionHost, SessionSlot } from './host.js';
import { type GuestShell, ReadOnlyAttachments } from './hotplug.js';
import { applyEnvironment } from './library/properties.js';
import { Lifecycle, type SessionState } from './lifecycle.js';
import { type LaunchStats, resumeSnapshot } from './resume.js';
import { Savepoints } from './savepoints.js';
import { defaultSettings, type SessionSettings } from './settings.js';
import type { StopOptions } from './transaction.js';

const noop = (): void => {};

export type { CallTransfer } from '../../spec/values.js';
export type { Drive, DriveOptions } from './drives.js';
export type { SessionState } from './lifecycle.js';
export type { LaunchStats } from './resume.js';
export type { SessionSettings } from './settings.js';

/** guestsh's own operations, beside libguestfs's on `session.g`. */
export interface SessionControls {
  savepoint(name: string): Promise<void>;
  rollbackTo(name: string): Promise<void>;
}

export interface ProgressEvent {
  action: string;
  /** The daemon's procedure number and the call's serial, as libguestfs's progress event carries them. */
  proc: number;
  serial: number;
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
  /** An action is called (its name), before its arguments are checked: libguestfs's enter event. */
  enter: [string];
  /** launch() has the appliance ready (libguestfs's launch_done). */
  launched: [];
  /** close() has ended the session, the first time it is called (libguestfs's close event). */
  closed: [];
  /** The appliance's qemu died under a call (libguestfs's subprocess_quit); the handle goes back to config. */
  applianceQuit: [];
  /** A read-write image's changes are being merged into it (journal written next). */
  commit: [{ image: string }];
}

export interface SessionOptions {
  /**
   * Whose LIBGUESTFS_* variables the new session applies, as libguestfs's
   * handle creation does (default process.env; {} applies none).
   */
  env?: Readonly<Record<string, string | undefined>>;
}

// Sessions still holding a VM or temp files; reaped if the process exits.
const live = new Set<Session>();
process.on('exit', () => {
  for (const s of live) s.reapNow();
});

export class Session extends EventEmitter<SessionEvents> implements SessionHost {
  private readonly lifecycle = new Lifecycle();
  readonly drives: Drive[] = [];
  readonly settings: SessionSettings = defaultSettings();
  /** How the last launch went, for -v and the benchmarks. */
  launchStats: LaunchStats | null = null;
  private runDir: string | null = null;
  /** The launch in progress: close() aborts it and waits until it has let go of its qemu. */
  private launchUnderWay: { abort: AbortController; ended: Promise<void> } | null = null;
  private applianceUse: ApplianceUse | null = null;
  /** The appliance stopped after a successful session, and its changes are not all committed yet. */
  private commitPending = false;
  private conn: Connection | null = null;
  private readonly slots = new Map<SessionSlot<unknown>, unknown>();
  /** close() has been called: the closed event is fired once. */
  private closeCalled = false;
  /** A stopped appliance's drives being released (stopped → config): close() and shutdown() wait for it. */
  private resetting: Promise<void> | null = null;
  /** shutdown()'s merges while they run: close() waits for them rather than pull their files away. */
  private merging: Promise<void> | null = null;
  /** What must end while the appliance still answers (a FUSE mount of it), run first by shutdown() and close(). */
  private readonly endHooks = new Set<() => Promise<void>>();

  constructor(opts: SessionOptions = {}) {
    super();
    const refused: string[] = [];
    applyEnvironment(this, opts.env ?? process.env, (variable, e) => refused.push(`${variable} ignored: ${e.message}`));
    // On the next tick, so listeners attached right after `new Session()` hear them.
    if (refused.length > 0) process.nextTick(() => refused.forEach((line) => this.emit('notice', line)));
  }

  private readonly dispatcher = new Dispatcher({
    lifecycle: this.lifecycle,
    library: this,
    settings: this.settings,
    connection: () => this.conn,
    emitTrace: (line) => this.emit('trace', line),
    emitEnter: (action) => this.emit('enter', action),
    applianceDied: (action, vm) => this.applianceDied(action, vm),
  });

  /** Every public libguestfs action as a typed method, e.g. `await s.g.mkfs('ext4', '/dev/sda1', { label: 'root' })`. */
  readonly g: GuestfsApi & SessionControls = Object.freeze({
    ...createApi(this),
    savepoint: (name: string) => this.savepoint(name),
    rollbackTo: (name: string) => this.rollbackTo(name),
  });

  /**
   * libguestfs's internal and debug actions, typed, for guestsh's own
   * library-side code. Kept off `g`: they are guestfsd's plumbing, which
   * libguestfs does not offer its users and recipes do not get.
   */
  readonly internal: GuestfsInternalApi = createInternalApi(this.dispatcher);

  // The in-guest shell, over the ready path and over launch's own.
  private readonly shell: GuestShell = (script) => this.internal.debug('sh', [script]);
  private readonly duringLaunch = createInternalApi(this.dispatcher.duringLaunch);
  private readonly launchShell: GuestShell = (script) => this.duringLaunch.debug('sh', [script]);

  private readonly attachments = new ReadOnlyAttachments({
    vm: () => this.vm('attach'),
    shell: this.shell,
    runDir: () => this.runDir!,
    driveCount: () => this.drives.length,
    backing: () => this.settings.backing,
  });

  private readonly savepoints = new Savepoints({
    drives: this.drives,
    g: this.g,
    shell: this.shell,
    vm: () => this.vm('savepoint'),
    runDir: () => this.runDir!,
    diskCount: () => this.drives.length + this.attachments.count,
  });

  /**
   * How many calls since launch may have written to the disks (by
   * action-policy.ts's writesDisks: mounts and reads do not count; a failed
   * write does). With none, there is nothing of the user's to keep: the
   * shell and `guestsh run` discard instead of committing, so mounting
   * read-write (which touches a superblock) leaves an image byte-identical.
   */
  get writeCalls(): number {
    return this.dispatcher.writeCalls;
  }

  get state(): SessionState {
    return this.lifecycle.state;
  }

  /** The private temp directory (sockets, overlays), while one exists. */
  get runDirectory(): string | null {
    return this.runDir;
  }

  /** The qemu process id while the appliance runs (for tests and `status`). */
  get qemuPid(): number | null {
    return this.conn?.vm.pid ?? null;
  }

  assertState(op: string, ...states: SessionState[]): void {
    this.lifecycle.assert(op, ...states);
  }

  slot<T>(slot: SessionSlot<T>): T {
    if (!this.slots.has(slot)) this.slots.set(slot, slot.create());
    return this.slots.get(slot) as T;
  }

  private vm(op: string): Vm {
    if (!this.conn) throw new Error(`${op}: no appliance attached (guestsh bug)`);
    return this.conn.vm;
  }

  private async ensureRunDir(): Promise<string> {
    if (!this.runDir) {
      this.runDir = await mkdtemp(join(this.settings.tmpdir ?? tmpdir(), 'guestsh-'));
      watchRunDir(this.runDir);
      live.add(this);
    }
    return this.runDir;
  }

  async addDrive(path: string, opts: DriveOptions = {}): Promise<void> {
    this.assertState('add_drive', 'config');
    const drive = await openDrive(path, opts, this.drives.length, () => this.ensureRunDir(), this.settings.transactions, this.settings.backing);
    if (drive.tx) {
      live.add(this);
      if (drive.tx.recovered === 'rolled-forward') this.emit('notice', `completed an interrupted commit of '${path}' first`);
      if (drive.tx.recovered === 'discarded-abandoned-run') {
        this.emit('notice', `removed the uncommitted changes an interrupted run left beside '${path}'`);
      }
    }
    this.drives.push(drive);
  }

  /** A temporary blank disk that disappears with the session. */
  async addDriveScratch(sizeBytes: bigint | number, opts: { label?: string | undefined; blocksize?: number | undefined } = {}): Promise<void> {
    this.assertState('add_drive_scratch', 'config');
    this.drives.push(await scratchDrive(sizeBytes, opts, this.drives.length, await this.ensureRunDir()));
  }

  async launch(): Promise<void> {
    this.assertState('launch', 'config');
    if (this.drives.length === 0) throw new UsageError('launch: add at least one drive first (-a IMAGE)');
    this.lifecycle.transition('launching');
    const abort = new AbortController();
    const launched = this.startAppliance(abort.signal);
    this.launchUnderWay = { abort, ended: launched.then(noop, noop) };
    try {
      await launched;
    } finally {
      this.launchUnderWay = null;
    }
  }

  private async startAppliance(signal: AbortSignal): Promise<void> {
    // A stop kills whichever qemu the launch has reached, so that a call it waits on ends now.
    const killAttached = (): void => this.conn?.vm.kill();
    signal.addEventListener('abort', killAttached, { once: true });
    try {
      const cfg = await this.vmConfig(signal);
      signal.throwIfAborted();
      if (this.settings.snapshots) await this.tryResume(cfg);
      if (!this.conn) {
        signal.throwIfAborted();
        const started = Date.now();
        this.connect(await Vm.start(cfg));
        this.launchStats = { mode: 'boot', bootMs: Date.now() - started };
      }
      signal.throwIfAborted();
      this.lifecycle.transition('ready');
      this.emit('launched');
    } catch (e) {
      await this.dropAppliance();
      // A failed launch leaves the session as it was, to launch again; a
      // session closed meanwhile stays closed.
      if (this.state === 'launching') this.lifecycle.transition('config');
      throw e;
    } finally {
      signal.removeEventListener('abort', killAttached);
    }
  }

  private async vmConfig(signal: AbortSignal): Promise<VmConfig> {
    // Held until the session closes, so that a rebuild for newer packages does not delete it under us.
    this.applianceUse ??= await useAppliance((l) => this.emit('notice', l));
    const appliance = this.applianceUse.appliance;
    const accel = await chooseAccel(appliance.kernel, this.settings.backendSettings.includes('force_tcg'));
    if (accel.probed && accel.accel === 'tcg') this.emit('notice', accel.reason);
    if (this.settings.verbose) this.emit('console', `guestsh: ${accel.reason}`);
    return {
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
      signal,
    };
  }

  /** Resumes the saved appliance; on any failure the half-resumed VM is gone when this returns. */
  private async tryResume(cfg: VmConfig): Promise<void> {
    try {
      this.launchStats = await resumeSnapshot(cfg, {
        notice: (l) => this.emit('notice', l),
        attach: (vm) => this.connect(vm),
        shell: this.launchShell,
      });
    } catch (e) {
      // Killed and reaped before the cold boot, so nothing can reach the
      // dead VM's channel and its qemu does not linger.
      await this.dropAppliance();
      if (this.settings.verbose) this.emit('console', `guestsh: resuming a saved appliance failed, booting instead: ${(e as Error).message}`);
    }
  }

  private connect(vm: Vm): void {
    this.conn = new Connection(vm, (p) => {
      this.emit('progress', { action: this.dispatcher.currentAction ?? '', proc: p.proc, serial: p.serial, position: p.position, total: p.total });
    });
  }

  /** Kills the appliance, if any; detached first so that no call picks it up meanwhile. */
  private async dropAppliance(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    await conn?.kill();
  }

  /**
   * Plugs another image into the running appliance, read-only through a
   * throwaway overlay, after the session's own drives. Returns its device.
   */
  async attachReadOnly(path: string, format?: string): Promise<string> {
    this.assertState('attach', 'ready');
    return this.attachments.attach(path, format);
  }

  /** Unplugs the drive attachReadOnly() added last and deletes its throwaway overlay. */
  async detachReadOnly(device: string): Promise<void> {
    this.assertState('detach', 'ready');
    return this.attachments.detach(device);
  }

  /**
   * Files added, removed and modified on the read-write drives so far,
   * compared with the images as they were (what --dry-run reports).
   */
  changes(): Promise<FileChange[]> {
    this.assertState('changes', 'ready');
    return changesAgainstBase(this);
  }

  /**
   * Marks the current state of every read-write drive; rollbackTo(name)
   * returns to it. Costs one new qcow2 layer per drive, no copying.
   */
  async savepoint(name: string): Promise<void> {
    this.assertState('savepoint', 'ready');
    await this.savepoints.take(name);
  }

  /**
   * Returns every read-write drive to savepoint `name`, in the same session:
   * filesystems are unmounted, the disks swapped for fresh layers over the
   * savepoint's state, and the filesystems mounted again where they were.
   * Savepoints taken after `name` are forgotten.
   */
  async rollbackTo(name: string): Promise<void> {
    this.assertState('rollback', 'ready');
    await this.savepoints.rollbackTo(name);
  }

  /** Calls any action by name (snake_case, kebab-case or alias). */
  call(name: string, args: readonly ArgValue[] = [], optargs: OptArgs = {}, transfer: CallTransfer = {}): Promise<RetValue> {
    return this.dispatcher.call(name, args, optargs, transfer);
  }

  /**
   * The VM went away under a call: explain why, and put the handle back in
   * config as libguestfs does (its drives dropped, their uncommitted changes
   * discarded), so that drives can be added and the appliance launched again.
   */
  private async applianceDied(action: string, vm: Vm): Promise<ApplianceError> {
    // Nothing may talk to this VM again (not even shutdown's autosync). A
    // second call that met the same dead channel waits for the same reset.
    if (this.state === 'ready') {
      this.lifecycle.transition('stopped');
      this.resetting = (async () => {
        // The socket usually closes a moment before qemu's exit status arrives.
        await Promise.race([vm.exited, sleep(1000, undefined, { ref: false })]);
        this.emit('applianceQuit');
        await this.releaseDrives();
      })().finally(() => (this.resetting = null));
    }
    await this.resetting?.catch(noop);
    return new ApplianceError(`${action}: the appliance died: ${vm.describeExit()}`);
  }

  /**
   * libguestfs's shutdown and kill_subprocess actions: the appliance stops
   * (synced first, with autosync), the changes are committed as shutdown()
   * commits them, and the handle is back in config with no drives, to add
   * drives and launch again. In config there is nothing to stop.
   */
  async stopAppliance(): Promise<void> {
    await this.resetting?.catch(noop);
    if (this.state === 'config') return;
    // stopped here is a stop whose commit was refused: this retries it.
    this.assertState('shutdown', 'ready', 'stopped');
    await this.stopAndCommit('stopped', {});
    this.resetting = this.releaseDrives().finally(() => (this.resetting = null));
    await this.resetting;
  }

  /**
   * stopped → config: the old appliance's qemu, drives (uncommitted changes
   * discarded, locks released), savepoints, attachments and run directory
   * are gone, and nothing learnt about them (feature groups, caches) is kept.
   * The settings stay, as libguestfs keeps them.
   */
  private async releaseDrives(): Promise<void> {
    if (this.state !== 'stopped') return;
    await this.runEndHooks();
    await this.dropAppliance();
    for (const d of this.drives) await d.tx?.discard();
    this.drives.length = 0;
    this.savepoints.forget();
    this.attachments.forget();
    this.slots.clear();
    this.dispatcher.writeCalls = 0;
    await this.removeRunDir();
    // close() meanwhile has already ended the session.
    if (this.state === 'stopped') this.lifecycle.transition('config');
  }

  private async removeRunDir(): Promise<void> {
    if (!this.runDir) return;
    const dir = this.runDir;
    this.runDir = null;
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    releaseWatchdogs(dir);
  }

  /**
   * The successful end of a session: syncs and unmounts (autosync), stops qemu
   * cleanly, and commits every read-write image's changes. A commit refused
   * before it wrote anything (a reader stayed, no space) throws and keeps the
   * changes: calling shutdown() again retries it; close() discards them.
   * `signal` stops it: aborted before the first merge begins, nothing is
   * committed (it throws; close() then discards); from then on every
   * image's merge completes. `confirmStop` is asked just before that moment.
   */
  beforeEnd(hook: () => Promise<void>): () => void {
    this.endHooks.add(hook);
    return () => void this.endHooks.delete(hook);
  }

  private async runEndHooks(): Promise<void> {
    const hooks = [...this.endHooks];
    this.endHooks.clear();
    for (const hook of hooks) await hook().catch(() => undefined);
  }

  async shutdown(opts: StopOptions = {}): Promise<void> {
    await this.resetting?.catch(noop);
    await this.stopAndCommit('closed', opts);
    await this.dropAppliance();
    if (this.state === 'launching' || this.state === 'stopped') this.lifecycle.transition('closed');
  }

  /** Stops a ready appliance cleanly (moving to `after`), then commits: shutdown()'s work, and stopAppliance()'s. */
  private async stopAndCommit(after: 'closed' | 'stopped', opts: StopOptions): Promise<void> {
    await this.runEndHooks();
    if (this.state === 'ready') {
      if (this.settings.autosync) {
        try {
          await this.internal.internalAutosync();
        } catch (e) {
          if (!(e instanceof GuestfsError)) throw e;
          // A failed umount still leaves the data synced; qemu's quit flushes too.
        }
      }
      const conn = this.conn!;
      this.conn = null;
      await conn.quit();
      // close() meanwhile (a stop) has discarded the changes: nothing to commit.
      if (this.state !== 'ready') return;
      this.lifecycle.transition(after);
      this.commitPending = true;
    }
    if (this.commitPending) {
      // The last point where a stop still means discard: past it, an
      // interrupted merge would only be rolled forward by the next open.
      opts.confirmStop?.();
      opts.signal?.throwIfAborted();
      let merged!: () => void;
      this.merging = new Promise((resolve) => (merged = resolve));
      try {
        // qemu has closed the overlays: the run succeeded, make it permanent.
        let first = true;
        for (const d of this.drives) {
          if (!d.tx?.open) continue;
          this.emit('commit', { image: d.path });
          // The first commit still heeds the stop while it prepares (layers, checks): its merge has not begun.
          await d.tx.commit(d.layers.at(-1), first ? opts : undefined);
          first = false;
        }
      } finally {
        merged();
      }
      this.commitPending = false;
    }
  }

  /**
   * Ends the session. Changes not committed by shutdown() are discarded, so
   * an error path that only closes leaves every image as it was. Safe to call
   * twice, and while shutdown() runs: merges under way complete first.
   */
  async close(): Promise<void> {
    const first = !this.closeCalled;
    this.closeCalled = true;
    // As libguestfs traces its close.
    if (first && this.settings.trace) this.emit('trace', 'close');
    // A launch under way gives up first and has killed its qemu when it ends:
    // only then is the run directory free to remove, with nothing still writing into it.
    if (this.launchUnderWay) {
      this.launchUnderWay.abort.abort(new ApplianceError('launch: the session was closed while the appliance started'));
      await this.launchUnderWay.ended;
    }
    // A dead appliance's drives are being released: let that end first.
    await this.resetting?.catch(noop);
    await this.runEndHooks();
    await this.merging;
    const conn = this.conn;
    this.conn = null;
    try {
      // Nothing of the guest's will be kept, so there is nothing to sync.
      await conn?.quit();
    } finally {
      await conn?.kill();
      if (this.state !== 'closed') this.lifecycle.transition('closed');
      // Whatever was not committed by shutdown() is thrown away.
      for (const d of this.drives) await d.tx?.discard();
      await this.removeRunDir();
      this.applianceUse?.release();
      this.applianceUse = null;
      live.delete(this);
      if (first) this.emit('closed');
    }
  }

  /** Synchronous last-resort cleanup for process exit. */
  reapNow(): void {
    this.conn?.vm.kill();
    for (const d of this.drives) d.tx?.discardNow();
    if (this.runDir) rmSync(this.runDir, { recursive: true, force: true });
  }
}
