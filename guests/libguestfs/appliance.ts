// The libguestfs 1.48 appliance as guestsh runs it: what it is built from, how
// the kernel is started, and the device model. Values are libguestfs's own
// choices (lib/launch-direct.c, lib/appliance-kcmdline.c) unless a comment says
// why guestsh differs.

import optional from './optional-packages.json' with { type: 'json' };

export const applianceName = 'libguestfs-1.48';

/** Where Debian's libguestfs0 installs the supermin recipe, per multiarch tuple. */
export const superminDirCandidates = [
  '/usr/lib/x86_64-linux-gnu/guestfs/supermin.d',
  '/usr/lib/guestfs/supermin.d',
];

/**
 * Debian's optional appliance packages: each drops one recipe file into
 * supermin.d, and the appliance gains what it adds. ./dev installs them all
 * (it reads the same file).
 */
export interface OptionalPackage {
  package: string;
  /** The file it adds to supermin.d. */
  recipe: string;
  adds: string;
}
export const optionalPackages: readonly OptionalPackage[] = optional;

/** Debian packages the appliance is built from, named in "cannot build" errors. */
export const hostPackages = {
  recipe: 'libguestfs0',
  builder: 'supermin',
  kernel: 'linux-image-amd64',
  qemu: 'qemu-system-x86',
  qemuImg: 'qemu-utils',
} as const;

/** libguestfs's default on x86_64. */
export const defaultMemoryMiB = 1280;

/** The virtio-serial port name guestfsd looks for. */
export const daemonPortName = 'org.libguestfs.channel.0';

export interface KernelOptions {
  rootUuid: string;
  tcg: boolean;
  verbose: boolean;
  network: boolean;
  /** Host loops-per-jiffy; skips the guest's delay-loop calibration under TCG. */
  lpj: number | null;
}

export function kernelCommandLine(o: KernelOptions): string {
  const words = [
    'panic=1', // guestfsd exiting panics the kernel, and -no-reboot then ends qemu
    'console=ttyS0',
    'edd=off',
    'udevtimeout=6000',
    'udev.event-timeout=6000',
    'no_timer_check',
    ...(o.tcg && o.lpj ? [`lpj=${o.lpj}`] : []),
    'printk.time=1',
    'cgroup_disable=memory',
    'usbcore.nousb',
    'cryptomgr.notests',
    'tsc=reliable',
    '8250.nr_uarts=1',
    `root=UUID=${o.rootUuid}`,
    'selinux=0',
    o.verbose ? 'guestfs_verbose=1' : 'quiet',
    ...(o.network ? ['guestfs_network=1'] : []),
    'TERM=dumb',
  ];
  return words.join(' ');
}
