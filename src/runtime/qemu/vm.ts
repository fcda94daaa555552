// One appliance VM: the qemu process, its serial console, its QMP socket and the
// guestfsd channel. Lifecycle: starting → running → exited, each step checked.
// A watchdog process kills qemu if this process dies without cleaning up (even
// by SIGKILL), so no appliance outlives its owner. File names reach qemu
// absolute: a relative one holding a ':' would be read as a protocol.

import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join, resolve as absolute } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonPortName, kernelCommandLine } from '../../../guests/libguestfs/appliance.js';
import type { Appliance } from '../appliance/build.js';
import { ApplianceError } from '../errors.js';
import { ChannelClosedError, DaemonChannel } from '../protocol/channel.js';
import { type Accel, QEMU } from './accel.js';
import { Qmp, QmpClosedError, type QmpEvent } from './qmp.js';
import { watchRunDir } from './watchdog.js';

export interface DriveConfig {
  file: string;
  format: string;
  /** writeback for the user's data; unsafe for throwaway overlays (no flushes needed). */
  cache: 'writeback' | 'unsafe';
  readonly: boolean;
  serial?: string | undefined;
  /** The disk's logical and physical sector size (add_drive's blocksize); qemu's default (512) when unset. */
  blocksize?: number | undefined;
}

/** The appliance's root filesystem as qemu opens it. */
export interface RootDisk {
  file: string;
  format: 'raw' | 'qcow2';
  /** true: qemu keeps the guest's writes in a hidden temporary overlay. */
  throwaway: boolean;
}

export interface VmConfig {
  appliance: Appliance;
  /** Defaults to the appliance's pristine root, thrown away after use. */
  root?: RootDisk | undefined;
  drives: DriveConfig[];
  accel: Accel;
  memoryMiB: number;
  smp: number;
  verbose: boolean;
  network: boolean;
  /** Private directory for sockets; the watchdog removes it if we die. */
  runDir: string;
  launchTimeoutMs: number;
  /** Receives console lines from the first one on (boot messages included). */
  onConsole?: ((line: string) => void) | undefined;
  /** Gives the start up: qemu is killed and reaped before the start rejects (a session closed while launching). */
  signal?: AbortSignal | undefined;
}

export type VmState = 'starting' | 'running' | 'exited';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const CONSOLE_TAIL_LINES = 30;
const STDERR_TAIL_LINES = 8;

/** qemu exited (or was killed) while the appliance was starting; the message has its exit status and last words. */
export class QemuDiedError extends ApplianceError {
  override name = 'QemuDiedError';
}

/** The failures that are qemu going away: a socket it held closed. */
function socketClosed(e: unknown): boolean {
  return e instanceof ChannelClosedError || e instanceof QmpClosedError;
}

function hostLpj(): number | null {
  // Loops per jiffy from the host's BogoMIPS (HZ=250 on Debian kernels): lets a
  // TCG guest skip calibrating its delay loop.
  try {
    const m = /bogomips\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? Math.round((Number(m[1]) * 500000) / 250) : null;
  } catch {
    return null;
  }
}

export function qemuArgs(cfg: VmConfig, sockets: { daemon: string; qmp: string }): string[] {
  const a: string[] = ['-no-user-config', '-nodefaults', '-display', 'none'];
  // The plain pc machine: q35's extra chipset costs boot time under TCG and
  // the appliance needs none of it.
  a.push('-machine', `accel=${cfg.accel},graphics=off`);
  // 5-level paging makes every TCG page walk longer; the appliance never needs it.
  a.push('-cpu', cfg.accel === 'kvm' ? 'host' : 'max,la57=off');
  a.push('-smp', String(cfg.smp), '-m', String(cfg.memoryMiB));
  a.push('-no-reboot', '-rtc', 'driftfix=slew', '-no-hpet');
  if (cfg.accel === 'kvm') a.push('-global', 'kvm-pit.lost_tick_policy=discard');
  a.push('-kernel', cfg.appliance.kernel, '-initrd', cfg.appliance.initrd);
  a.push('-object', 'rng-random,filename=/dev/urandom,id=rng0', '-device', 'virtio-rng-pci,rng=rng0');
  a.push('-device', 'virtio-scsi-pci,id=scsi');
  cfg.drives.forEach((d, i) => {
    const file = absolute(d.file).replaceAll(',', ',,');
    a.push('-drive', `file=${file},format=${d.format},cache=${d.cache},id=hd${i},if=none${d.readonly ? ',readonly=on' : ''}`);
    const sectors = d.blocksize ? `,physical_block_size=${d.blocksize},logical_block_size=${d.blocksize}` : '';
    a.push('-device', `scsi-hd,drive=hd${i},id=sd${i},scsi-id=${i}${d.serial ? `,serial=${d.serial}` : ''}${sectors}`);
  });
  // The appliance root sits on virtio-blk, a bus of its own, so the user's
  // disks are /dev/sda, /dev/sdb … in order whatever is plugged later.
  const root = cfg.root ?? { file: cfg.appliance.root, format: 'raw', throwaway: true };
  a.push(
    '-drive',
    `file=${absolute(root.file).replaceAll(',', ',,')},${root.throwaway ? 'snapshot=on,cache=unsafe' : 'cache=writeback'},id=appliance,if=none,format=${root.format}`,
  );
  a.push('-device', 'virtio-blk-pci,drive=appliance');
  // A new generation ID on every restore makes the guest kernel reseed its
  // random number generator, so sessions resumed from one snapshot differ.
  a.push('-device', 'vmgenid,guid=auto');
  a.push('-device', 'virtio-serial-pci', '-serial', 'stdio');
  a.push('-chardev', `socket,path=${sockets.daemon},id=channel0`);
  a.push('-device', `virtserialport,chardev=channel0,name=${daemonPortName}`);
  a.push('-qmp', `unix:${sockets.qmp},server=on,wait=off`);
  if (cfg.network) {
    a.push('-netdev', 'user,id=usernet,net=169.254.0.0/16', '-device', 'virtio-net-pci,netdev=usernet');
  }
  a.push(
    '-append',
    kernelCommandLine({
      rootUuid: cfg.appliance.rootUuid,
      tcg: cfg.accel === 'tcg',
      verbose: cfg.verbose,
      network: cfg.network,
      lpj: cfg.accel === 'tcg' ? hostLpj() : null,
    }),
  );
  return a;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

export class Vm extends EventEmitter<{ console: [string] }> {
  private state: VmState = 'starting';
  private readonly consoleTail: string[] = [];
  private partialLine = '';
  /** qemu's own complaints (a drive it cannot open, a bad option), apart from the guest's console. */
  private readonly stderrTail: string[] = [];
  private partialStderr = '';
  private exitInfo: ExitInfo | null = null;
  readonly exited: Promise<ExitInfo>;
  /** qemu has exited and its output has been read to the end. */
  private readonly drained: Promise<void>;
  qmp: Qmp | null = null;
  channel: DaemonChannel | null = null;

  private constructor(private readonly proc: ChildProcess) {
    super();
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        this.state = 'exited';
        resolve(this.exitInfo);
      });
    });
    this.drained = new Promise((resolve) => proc.on('close', () => resolve()));
    proc.stdout!.on('data', (d: Buffer) => this.onConsole(d.toString('latin1')));
    proc.stderr!.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      const lines = (this.partialStderr + text).split(/\r?\n/);
      this.partialStderr = lines.pop()!;
      for (const line of lines) if (line.trim()) this.stderrTail.push(line);
      this.stderrTail.splice(0, Math.max(0, this.stderrTail.length - STDERR_TAIL_LINES));
      this.onConsole(text);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  private onConsole(text: string): void {
    const lines = (this.partialLine + text).split(/\r?\n/);
    this.partialLine = lines.pop()!;
    for (const line of lines) {
      this.consoleTail.push(line);
      if (this.consoleTail.length > CONSOLE_TAIL_LINES) this.consoleTail.shift();
      this.emit('console', line);
    }
  }

  consoleLines(): string[] {
    return this.partialLine ? [...this.consoleTail, this.partialLine] : [...this.consoleTail];
  }

  /** Why the VM is gone, for error messages: exit status, qemu's last error lines, else the console's. */
  describeExit(): string {
    const how = this.exitInfo
      ? this.exitInfo.signal
        ? `qemu was killed by ${this.exitInfo.signal}`
        : `qemu exited with status ${this.exitInfo.code}`
      : 'the connection to guestfsd broke';
    const stderr = this.partialStderr.trim() ? [...this.stderrTail, this.partialStderr] : this.stderrTail;
    if (stderr.length) return `${how}; its last error output:\n  ${stderr.slice(-STDERR_TAIL_LINES).join('\n  ')}`;
    const tail = this.consoleLines().filter((l) => l.trim()).slice(-8);
    return tail.length ? `${how}; last console lines:\n  ${tail.join('\n  ')}` : how;
  }

  /** Boots the appliance and waits until guestfsd announces itself. */
  static start(cfg: VmConfig): Promise<Vm> {
    return Vm.spawn(cfg, [], async (vm, abort) => {
      const first = await Promise.race([vm.channel!.next(), abort]);
      if (first.type !== 'launch') throw new ApplianceError(`guestfsd sent ${first.type} instead of its launch flag`);
    });
  }

  /**
   * Restores an appliance saved by saveState, left paused so that drives can
   * be hot-plugged before the guest runs again (resume()). guestfsd sent its
   * launch flag before the save, so none comes now.
   */
  static restore(cfg: VmConfig, stateFile: string): Promise<Vm> {
    return Vm.spawn(cfg, ['-incoming', 'defer', '-S'], async (vm, abort) => {
      await Promise.race([vm.qmp!.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(stateFile)}` }), abort]);
      await Promise.race([vm.migrationDone(cfg.launchTimeoutMs), abort]);
    });
  }

  /**
   * Starts qemu, connects guestfsd's channel and QMP, then runs `until`; any
   * failure kills qemu. `abort` rejects if qemu exits or the launch times out.
   */
  private static async spawn(
    cfg: VmConfig,
    extraArgs: string[],
    until: (vm: Vm, abort: Promise<never>) => Promise<void>,
  ): Promise<Vm> {
    cfg.signal?.throwIfAborted();
    const sockets = { daemon: join(cfg.runDir, 'daemon.sock'), qmp: join(cfg.runDir, 'qmp.sock') };
    const server: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sockets.daemon, () => resolve());
    });
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));

    const proc = spawn(QEMU, [...qemuArgs(cfg, sockets), ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    const vm = new Vm(proc);
    if (cfg.onConsole) vm.on('console', cfg.onConsole);
    if (proc.pid !== undefined) {
      watchRunDir(cfg.runDir, proc.pid);
    }
    let timer: NodeJS.Timeout | undefined;
    const abort = Promise.race([
      new Promise<never>((_, reject) =>
        proc.once('error', (e) =>
          reject(new ApplianceError(`cannot run ${QEMU}: ${e.message}; install it with: apt-get install qemu-system-x86`)),
        ),
      ),
      vm.exited.then(() => {
        throw new QemuDiedError('qemu exited');
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ApplianceError(`the appliance did not start within ${cfg.launchTimeoutMs / 1000} s: ${vm.describeExit()}`)),
          cfg.launchTimeoutMs,
        );
      }),
      new Promise<never>((_, reject) => {
        if (cfg.signal?.aborted) reject(cfg.signal.reason);
        cfg.signal?.addEventListener('abort', () => reject(cfg.signal!.reason), { once: true });
      }),
    ]);
    abort.catch(() => undefined); // observed through the races below
    // qemu creates the QMP socket at once; connect while the kernel boots.
    const qmpCancel = new AbortController();
    void vm.exited.then(() => qmpCancel.abort());
    const qmpReady = Qmp.connect(sockets.qmp, cfg.launchTimeoutMs, qmpCancel.signal);
    qmpReady.catch(() => undefined); // a failed start is reported by `abort`, not twice
    try {
      const socket = await Promise.race([accepted, abort]);
      vm.channel = new DaemonChannel(socket, () => vm.describeExit());
      vm.qmp = await Promise.race([qmpReady, abort]);
      await until(vm, abort);
      vm.state = 'running';
      return vm;
    } catch (e) {
      // When qemu dies, its sockets close a moment before its exit status
      // arrives: after a closed socket, wait for the status (bounded by the
      // launch timeout), which is the news.
      if (vm.exitInfo === null && socketClosed(e)) await abort.catch(() => undefined);
      const died = vm.exitInfo !== null;
      if (proc.pid !== undefined) {
        vm.kill();
        await vm.exited;
      }
      if (!died) throw e;
      await vm.drained;
      throw new QemuDiedError(`the appliance failed to start: ${vm.describeExit()}`);
    } finally {
      clearTimeout(timer);
      server.close();
    }
  }

  private async migrationDone(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.qmp!.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
      if (info.status === 'completed') return;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new ApplianceError(`saving or restoring the appliance state failed: ${info['error-desc'] ?? info.status}`);
      }
      if (Date.now() > deadline) throw new ApplianceError('saving or restoring the appliance state timed out');
      await sleep(10);
    }
  }

  /**
   * Freezes the disk whose top block node is `top`: qemu creates `file`, a
   * qcow2 layer over it, and sends every later write there. Returns the new
   * top node's name.
   */
  async addLayer(top: string, file: string, node: string): Promise<string> {
    await this.qmp!.execute('blockdev-snapshot-sync', {
      // qemu looks `device` up as a drive name and `node-name` as a node name;
      // a cold-booted disk's top is the former, a hot-plugged one's the latter.
      device: top,
      'node-name': top,
      'snapshot-file': file,
      'snapshot-node-name': node,
      format: 'qcow2',
    });
    return node;
  }

  /** Closes a block node added by plug() once its disk is unplugged (its file can then be deleted). */
  async removeNode(node: string): Promise<void> {
    await this.qmp!.execute('blockdev-del', { 'node-name': node });
  }

  /** Unplugs SCSI disk `i` (qemu side); the guest notices asynchronously. */
  async unplug(i: number): Promise<void> {
    const deleted = new Promise<void>((resolve) => {
      const onEvent = (e: QmpEvent): void => {
        if (e.event === 'DEVICE_DELETED' && e.data?.device === `sd${i}`) {
          this.qmp!.off('event', onEvent);
          resolve();
        }
      };
      this.qmp!.on('event', onEvent);
    });
    await this.qmp!.execute('device_del', { id: `sd${i}` });
    // The timer is cancelled once the disk is gone: a pending one would keep the process alive.
    const timeout = new AbortController();
    try {
      await Promise.race([
        deleted,
        sleep(10_000, undefined, { signal: timeout.signal }).then(() => {
          throw new ApplianceError(`qemu did not unplug disk ${i} within 10 s`);
        }),
      ]);
    } finally {
      timeout.abort();
    }
  }

  /** Plugs `d` in as SCSI disk `i` (target i), its block node named `node`. */
  async plug(i: number, d: DriveConfig, node: string): Promise<void> {
    await this.qmp!.execute('blockdev-add', {
      'node-name': node,
      driver: d.format,
      'read-only': d.readonly,
      cache: { direct: false, 'no-flush': d.cache === 'unsafe' },
      file: { driver: 'file', filename: absolute(d.file) },
    });
    await this.qmp!.execute('device_add', {
      driver: 'scsi-hd',
      drive: node,
      id: `sd${i}`,
      'scsi-id': i,
      ...(d.serial ? { serial: d.serial } : {}),
      ...(d.blocksize ? { physical_block_size: d.blocksize, logical_block_size: d.blocksize } : {}),
    });
  }

  async resume(): Promise<void> {
    await this.qmp!.execute('cont');
  }

  /** Stops the guest and writes its whole state to `file`; qemu stays up, paused. */
  async saveState(file: string, timeoutMs: number): Promise<void> {
    await this.qmp!.execute('stop');
    await this.qmp!.execute('migrate', { uri: `exec:cat > ${shellQuote(file)}` });
    await this.migrationDone(timeoutMs);
  }

  kill(): void {
    if (this.state !== 'exited') this.proc.kill('SIGKILL');
    this.channel?.destroy();
    this.qmp?.close();
  }

  /** Asks qemu to quit (it flushes the drives); SIGKILL if it has not exited in time. */
  async quit(timeoutMs = 10_000): Promise<ExitInfo> {
    if (this.state === 'exited') return this.exitInfo!;
    try {
      await this.qmp?.execute('quit', undefined, timeoutMs);
    } catch {
      // The reply can race qemu's exit; the exit below is what counts.
    }
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const info = await this.exited;
    clearTimeout(timer);
    this.channel?.destroy();
    this.qmp?.close();
    return info;
  }
}
