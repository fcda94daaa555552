// Plugging disks into a running appliance and waiting until the guest has
// them under the names a cold boot would give. The guest names SCSI disks in
// the order it finishes probing them, so every plug waits for the disk
// before it; the waiting happens inside the guest (a shell loop over debug
// sh), one round trip instead of polling over the wire.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplianceError, UsageError } from '../errors.js';
import { type BackingPolicy, createOverlay, probeImage } from '../qemu/img.js';
import type { DriveConfig, Vm } from '../qemu/vm.js';

/** Runs a shell snippet in the appliance (guestfsd's debug sh) and returns its output. */
export type GuestShell = (script: string) => Promise<string>;

const HOTPLUG_SETTLE_MS = 30_000;

/** A guest shell loop that waits (10 ms steps, bounded by HOTPLUG_SETTLE_MS) until `test` holds. */
export function inGuestUntil(test: string): string {
  return `i=0; until ${test} || [ $i -ge ${HOTPLUG_SETTLE_MS / 10} ]; do sleep 0.01; i=$((i+1)); done`;
}

/** The appliance's name for the i-th user disk (0 → sda); past 26 the kernel goes on sdaa. */
export function diskName(i: number): string {
  const letters = (n: number): string => (n < 26 ? String.fromCharCode(0x61 + n) : letters(Math.floor(n / 26) - 1) + letters(n % 26));
  return `sd${letters(i)}`;
}

/**
 * Waits until the guest has `count` SCSI disks with their partitions and
 * udev has settled, and checks that disk i is at SCSI target i: otherwise
 * device names would not match the drive order. `then` is more shell run in
 * the same round trip.
 *
 * An open of each disk returns once the kernel has scanned its partition
 * table, so the settle that follows has the disk's events queued. The settle
 * cannot go: guestfsd 1.48 lists devices (list_devices, device name
 * translation) from udev's /dev/disk/by-path links, and list_devices does not
 * settle first (without it, a first list_devices answered an empty list).
 */
export async function waitForDisks(shell: GuestShell, count: number, then = ''): Promise<void> {
  const disks = Array.from({ length: count }, (_, i) => `/dev/${diskName(i)}`).join(' ');
  // Each disk with its SCSI address (host:channel:target:lun), from sysfs
  // paths alone: no process started per disk.
  const script =
    `for d in ${disks}; do ${inGuestUntil('[ -b $d ]')}; true <$d 2>/dev/null; done; udevadm settle; ${then}` +
    'for b in /sys/bus/scsi/devices/*/block/sd*; do [ -e "$b" ] || continue; a=${b%/block/*}; echo "${b##*/} ${a##*/}"; done';
  const blocks = (await shell(script)).split('\n').filter((l) => l.startsWith('sd')).map((l) => l.split(' ') as [string, string]);
  if (blocks.length !== count) throw new ApplianceError(`the appliance saw ${blocks.length} of ${count} plugged drives`);
  for (const [name, address] of blocks) {
    const target = Number(address.split(':')[2]);
    if (name !== diskName(target)) {
      throw new ApplianceError(`the appliance named the disk at SCSI target ${target} ${name}, not ${diskName(target)}; device names would not match the drive order (launch again)`);
    }
  }
}

/** Plugs `drive` in as disk `i` and waits until the guest has its device node, settled. */
export async function plugAndSettle(vm: Vm, shell: GuestShell, i: number, drive: DriveConfig, node: string): Promise<void> {
  await vm.plug(i, drive, node);
  await shell(`${inGuestUntil(`[ -b /dev/${diskName(i)} ]`)}; udevadm settle`);
}

export interface AttachHost {
  vm(): Vm;
  shell: GuestShell;
  runDir(): string;
  /** How many drives the session launched with: attached ones go after them. */
  driveCount(): number;
  /** The session's backing-file policy, which attached images pass too. */
  backing(): BackingPolicy;
}

/**
 * Images plugged in read-only for a while (the change report's untouched
 * copies), after the session's own drives, last in first out so that disk
 * names stay dense.
 */
export class ReadOnlyAttachments {
  private attached = 0;

  constructor(private readonly host: AttachHost) {}

  get count(): number {
    return this.attached;
  }

  /** The appliance they were plugged into is gone, and their overlays with its run directory. */
  forget(): void {
    this.attached = 0;
  }

  async attach(path: string, format?: string): Promise<string> {
    const info = await probeImage(path, format, this.host.backing());
    const i = this.host.driveCount() + this.attached;
    const overlay = join(this.host.runDir(), `attached${i}.qcow2`);
    await createOverlay(path, format ?? info.format, overlay);
    await plugAndSettle(this.host.vm(), this.host.shell, i, { file: overlay, format: 'qcow2', cache: 'unsafe', readonly: false }, `at${i}`);
    // Counted once plugged: a failed attach must not shift the next one's name.
    this.attached++;
    return `/dev/${diskName(i)}`;
  }

  async detach(device: string): Promise<void> {
    const i = this.host.driveCount() + this.attached - 1;
    if (this.attached === 0 || device !== `/dev/${diskName(i)}`) throw new UsageError(`detach: ${device} is not the drive attached last`);
    const vm = this.host.vm();
    await vm.unplug(i);
    await this.host.shell(inGuestUntil(`[ ! -b ${device} ]`));
    await vm.removeNode(`at${i}`);
    await rm(join(this.host.runDir(), `attached${i}.qcow2`), { force: true });
    this.attached--;
  }
}
