// Starting a session from the saved appliance instead of booting: restore
// the paused VM, plug the drives in one by one, and make the guest fresh
// (clock set to now; vmgenid has reseeded its random generator; disks
// present with their partitions). Whatever fails here, the caller tears the VM
// down and boots.

import { ensureSnapshot } from '../qemu/snapshot.js';
import { type DriveConfig, Vm, type VmConfig } from '../qemu/vm.js';
import { diskName, type GuestShell, inGuestUntil, waitForDisks } from './hotplug.js';

export type LaunchStats =
  | { mode: 'boot'; bootMs: number }
  | { mode: 'snapshot'; snapshotMs: number; restoreMs: number; hotplugMs: number; settleMs: number };

export interface ResumeHost {
  notice(line: string): void;
  /** Makes `vm` the session's appliance, so that `shell` reaches it. */
  attach(vm: Vm): void;
  /** debug sh over the launch-time path (allowed while the session is launching). */
  shell: GuestShell;
}

/**
 * Fault injection for test/session-lifecycle.test.ts, null otherwise. A
 * hot-plug that qemu refuses after the restored guest is already running
 * cannot be caused on demand, yet it is the case where a live channel to
 * the resumed VM has to be torn down before the cold boot; a hook that
 * throws here stands in for qemu's refusal.
 */
export const hotplugFaultForTests: { hook: ((vm: Vm, disk: number) => void) | null } = { hook: null };

export async function resumeSnapshot(cfg: VmConfig, host: ResumeHost): Promise<LaunchStats> {
  const t0 = Date.now();
  const snap = await ensureSnapshot(cfg, (l) => host.notice(l));
  const t1 = Date.now();
  const vm = await Vm.restore({ ...cfg, drives: [], root: { file: snap.root, format: 'qcow2', throwaway: true } }, snap.state);
  host.attach(vm);
  const t2 = Date.now();
  const plug = async (i: number, d: DriveConfig): Promise<void> => {
    hotplugFaultForTests.hook?.(vm, i);
    await vm.plug(i, d, `hd${i}`);
  };
  // The first disk goes in before the guest runs; each further one once the
  // disk before it has its name. The guest names disks in the order it
  // finishes probing them, and two probed together can swap names (a CI
  // rehearsal saw the blank second disk come up as sda).
  const [first, ...more] = cfg.drives;
  if (first) await plug(0, first);
  await vm.resume();
  const t3 = Date.now();
  for (const [j, d] of more.entries()) {
    await host.shell(inGuestUntil(`[ -b /dev/${diskName(j)} ]`));
    await plug(j + 1, d);
  }
  // The guest's clock stopped when it was saved. It is set in the same
  // round trip as the disk check, to the host's time at `cont` plus the
  // guest's uptime since then (both in hundredths of a second), so the
  // time the message took to arrive does not count.
  const resumedCs = Math.floor(t3 / 10) - snap.savedUptimeCs;
  const setClock =
    `read u _ </proc/uptime; u=\${u%.*}\${u#*.}; t=$((${resumedCs} + u)); ` +
    'date -u -s @$((t / 100)).$((t % 100 / 10))$((t % 10)) >/dev/null; ';
  await waitForDisks(host.shell, cfg.drives.length, setClock);
  return { mode: 'snapshot', snapshotMs: t1 - t0, restoreMs: t2 - t1, hotplugMs: t3 - t2, settleMs: Date.now() - t3 };
}
