// A booted appliance saved to disk, so sessions resume it instead of booting.
// Saved once per (appliance build, qemu binary, accelerator, memory, vCPUs,
// network, verbosity), beside the appliance it belongs to, which is deleted
// (with its snapshots) when the host packages change.
//
// The appliance root the saved guest had mounted is a qcow2 overlay saved with
// it: the guest's page cache refers to blocks written there during boot.
// Each resumed session opens it with snapshot=on, so it stays frozen.

import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Accel } from './accel.js';
import { QEMU, qemuPath } from './accel.js';
import { Vm } from './vm.js';
import { releaseWatchdogs } from './watchdog.js';
import { createOverlay } from './img.js';
import type { Appliance } from '../appliance/build.js';
import { actionByName } from '../../spec/index.js';
import { decodeRet, encodeArgs } from '../protocol/codec.js';
import { Rpc } from '../protocol/rpc.js';

// Bump when the saved layout or the VM's device model changes.
const SNAPSHOT_LAYOUT = 2;
const SAVE_TIMEOUT_MS = 120_000;

export interface SnapshotParams {
  appliance: Appliance;
  accel: Accel;
  memoryMiB: number;
  smp: number;
  network: boolean;
  verbose: boolean;
  launchTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface Snapshot {
  dir: string;
  /** The VM state, as qemu's migration stream. */
  state: string;
  /** The appliance root as the saved guest left it. */
  root: string;
  /**
   * The guest's uptime when it was saved, in hundredths of a second (its
   * clocks stand still while it is paused): a resumed guest's uptime minus
   * this is how long ago it was resumed, which sets its clock without a
   * round trip of its own.
   */
  savedUptimeCs: number;
}

function qemuIdentity(): string {
  const p = qemuPath();
  if (p === null) return QEMU;
  const st = statSync(p);
  return `${p}:${st.size}:${st.mtimeMs}`;
}

export function snapshotDir(p: SnapshotParams): string {
  const key = createHash('sha256')
    .update(JSON.stringify([SNAPSHOT_LAYOUT, p.appliance.dir, p.appliance.kernel, qemuIdentity(), p.accel, p.memoryMiB, p.smp, p.network, p.verbose]))
    .digest('hex')
    .slice(0, 16);
  return join(p.appliance.dir, 'snapshots', key);
}

const paths = (dir: string): Omit<Snapshot, 'savedUptimeCs'> & { uptime: string } => ({
  dir,
  state: join(dir, 'state'),
  root: join(dir, 'root.qcow2'),
  uptime: join(dir, 'uptime'),
});

async function describe(dir: string): Promise<Snapshot> {
  const p = paths(dir);
  const savedUptimeCs = Number(await readFile(p.uptime, 'utf8').catch(() => ''));
  if (!Number.isSafeInteger(savedUptimeCs) || savedUptimeCs <= 0) throw new Error(`the saved appliance in ${dir} has no usable uptime record`);
  return { dir, state: p.state, root: p.root, savedUptimeCs };
}

/** /proc/uptime's first field ("9.21") in hundredths of a second. */
async function guestUptimeCs(vm: Vm): Promise<number> {
  const debug = actionByName('debug')!;
  const { bytes, bitmask } = encodeArgs(debug, ['sh', ['read u _ </proc/uptime; echo $u']]);
  const reply = await new Rpc(vm.channel!).call({ action: debug.name, procNr: debug.procNr!, args: bytes, optargsBitmask: bitmask });
  const m = /^(\d+)\.(\d\d)\s*$/.exec(decodeRet(debug.ret, reply) as string);
  if (!m) throw new Error('the appliance did not report its uptime');
  return Number(m[1]) * 100 + Number(m[2]);
}

/** The snapshot for these parameters, booting and saving an appliance if there is none yet. */
export async function ensureSnapshot(p: SnapshotParams, log: (line: string) => void): Promise<Snapshot> {
  const dir = snapshotDir(p);
  if (existsSync(paths(dir).state)) return describe(dir);
  log('saving a booted appliance for fast starts (once per appliance build) ...');
  const tmp = `${dir}.tmp-${process.pid}`;
  const runDir = await mkdtemp(join(tmpdir(), 'guestsh-'));
  let vm: Vm | null = null;
  try {
    await mkdir(tmp, { recursive: true });
    const draft = paths(tmp);
    await createOverlay(p.appliance.root, 'raw', draft.root);
    vm = await Vm.start({
      appliance: p.appliance,
      root: { file: draft.root, format: 'qcow2', throwaway: false },
      drives: [],
      accel: p.accel,
      memoryMiB: p.memoryMiB,
      smp: p.smp,
      verbose: p.verbose,
      network: p.network,
      runDir,
      launchTimeoutMs: p.launchTimeoutMs,
      signal: p.signal,
    });
    // A stop while saving kills qemu at once; the save then fails and the draft goes.
    const booted = vm;
    p.signal?.addEventListener('abort', () => booted.kill(), { once: true });
    // Read just before the save stops the guest: off by that QMP round trip.
    await writeFile(draft.uptime, String(await guestUptimeCs(vm)));
    await vm.saveState(draft.state, SAVE_TIMEOUT_MS);
    await vm.quit();
    vm = null;
    try {
      await rename(tmp, dir);
    } catch {
      // Another process saved one first: theirs is as good.
    }
    // Awaited here, so that a failure is the caller's before the cleanup below runs.
    return await describe(dir);
  } finally {
    vm?.kill();
    if (vm) await vm.exited;
    await rm(tmp, { recursive: true, force: true });
    await rm(runDir, { recursive: true, force: true });
    releaseWatchdogs(runDir);
  }
}
