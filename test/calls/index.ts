// The whole call-coverage table: groups of cases by fixture, in the order the
// test runs them, plus every public action no case exercises, with the reason.
import { publicActions } from '../../src/spec/index.js';
import { notSupported } from '../../src/runtime/session/library/index.js';
import { blankGroup } from './blank.js';
import { configGroup } from './config.js';
import { filesGroup } from './files.js';
import { bootGroup, guestGroup, lifecycleGroup } from './guest.js';
import type { Group } from './table.js';

export type { Case, Ctx, FixtureName, Group } from './table.js';

export const groups: Group[] = [configGroup, bootGroup, blankGroup, filesGroup, guestGroup, lifecycleGroup];

const WINDOWS = 'needs a Windows guest (no Windows test image yet)';
const LDM = 'needs a Windows dynamic-disk (LDM) group; the listing calls are exercised on disks without one';

/** Public actions the table does not exercise, and why. */
export const notExercised: Record<string, string> = {
  // guestsh refuses these (see notSupported in src/runtime/session/library).
  ...Object.fromEntries(Object.entries(notSupported).map(([k, v]) => [k, `not supported in guestsh: ${v}`])),
  rsync_in: 'needs an rsync server reachable from the appliance network',
  rsync_out: 'needs an rsync server reachable from the appliance network',
  selinux_relabel: 'optional group "selinuxrelabel" is missing from the appliance (no setfiles)',
  getcon: 'the appliance kernel runs without SELinux, so there is no context to read',
  setcon: 'the appliance kernel runs without SELinux, so there is no context to set',
  inspect_get_windows_systemroot: WINDOWS,
  inspect_get_windows_current_control_set: WINDOWS,
  inspect_get_windows_software_hive: WINDOWS,
  inspect_get_windows_system_hive: WINDOWS,
  ldmtool_diskgroup_name: LDM,
  ldmtool_diskgroup_disks: LDM,
  ldmtool_diskgroup_volumes: LDM,
  ldmtool_volume_type: LDM,
  ldmtool_volume_hint: LDM,
  ldmtool_volume_partitions: LDM,
  journal_open: 'needs systemd journal files; the minbase Debian guest has none',
  journal_close: 'needs systemd journal files; the minbase Debian guest has none',
  journal_next: 'needs systemd journal files; the minbase Debian guest has none',
  journal_skip: 'needs systemd journal files; the minbase Debian guest has none',
  journal_get: 'needs systemd journal files; the minbase Debian guest has none',
  journal_get_data_threshold: 'needs an open journal (journal_open); the minbase Debian guest has none',
  journal_set_data_threshold: 'needs an open journal (journal_open); the minbase Debian guest has none',
  journal_get_realtime_usec: 'needs systemd journal files; the minbase Debian guest has none',
  mount_9p: 'needs a 9p share; guestsh does not attach virtio-9p devices',
  grub_install: 'needs GRUB\'s platform modules, which the appliance does not carry (grub2-common only)',
  set_e2generation: 'the appliance kernel refuses FS_IOC_SETVERSION on ext4 ("Inappropriate ioctl for device"; asserted in the ext4 group)',
  btrfs_image: 'in this appliance btrfs-image left no output file ("/bt.img: No such file or directory" right after the call); not investigated further',
  btrfs_filesystem_resize: 'the appliance kernel answers "unable to resize \'/sysroot/\': Invalid argument" for a 128 MiB single-device btrfs, with or without a size; not investigated further',
  sfdiskM: 'util-linux 2.38 sfdisk no longer has -uM (the daemon runs "sfdisk -uM"); sfdisk and sfdisk_N are exercised',
  list_9p: 'the 1.48 daemon answers "9p support was removed in libguestfs 1.48" (checked in the boot group)',
  remove_drive: 'libguestfs 1.48 itself refuses it ("hotplugging support was removed"); guestsh answers the same',
  sfdisk_disk_geometry: 'util-linux 2.38 sfdisk no longer has -G (the daemon runs "sfdisk -G")',
  // A FUSE mount needs root and its own process to touch it: test/mount.test.ts calls all three.
  mount_local: 'exercised by test/mount.test.ts (a FUSE mount, touched from another process)',
  mount_local_run: 'exercised by test/mount.test.ts (a FUSE mount, touched from another process)',
  umount_local: 'exercised by test/mount.test.ts (a FUSE mount, touched from another process)',
};

export interface Coverage {
  publicCount: number;
  exercised: string[];
  notExercised: [string, string][];
  /** Public actions neither exercised nor listed (must be empty). */
  unaccounted: string[];
  /** Names in the table that are not public actions (must be empty). */
  unknown: string[];
}

export function coverage(): Coverage {
  const pub = new Set(publicActions().map((a) => a.name));
  const named = new Set(groups.flatMap((g) => g.cases.flatMap((c) => c.actions)));
  const exercised = [...named].filter((n) => pub.has(n)).sort();
  const unknown = [...named, ...Object.keys(notExercised)].filter((n) => !pub.has(n));
  const listed = Object.entries(notExercised).filter(([n]) => !named.has(n)).sort(([a], [b]) => (a < b ? -1 : 1));
  const unaccounted = [...pub].filter((n) => !named.has(n) && !(n in notExercised)).sort();
  return { publicCount: pub.size, exercised, notExercised: listed, unaccounted, unknown };
}
