// The `bootable` guest: a Debian bookworm that really boots (kernel,
// initramfs, systemd as init), for tests that start the guest itself, such
// as firstboot's. Built like `debian` (debian-rootfs.ts, then debian.ts's
// no-mount steps), from its own root flavour.
//
// Kernel: linux-image-cloud-amd64, Debian's kernel flavour for virtual
// machines: the same kernel source as linux-image-amd64 without the drivers
// for hardware a VM never has, so the guest carries ~100 MB of modules
// instead of ~400 MB. Its initramfs is made by initramfs-tools inside
// debootstrap's chroot with the default MODULES=most, which includes the
// virtio-blk/virtio-scsi/ahci drivers and ext4, so root=UUID= resolves on the
// virtio-blk disk the tests boot.
//
// Outputs beside the images: bootable.vmlinuz and bootable.initrd.img, copies
// of the guest's own /boot files taken from the build root, for qemu's direct
// kernel boot (-kernel/-initrd/-append). Copying them at build time costs
// nothing, where reading them out of the image at test time would cost an
// appliance boot per test; the truth file records their sha256 so a test can
// check they are what the image's /boot holds. No bootloader is installed:
// direct kernel boot does not need one.
//
// Determinism: as for `debian`, except the initramfs (cpio timestamps from
// the build) and so the image's /boot bytes; the root tarball is not
// byte-identical across cold builds.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError, step } from './build-support.js';
import type { RootfsFlavour } from './debian-rootfs.js';
import { MiB, bootAndRootPartitions, ensureProfileImages, type DebianImages, type DebianTruth, type ImageProfile } from './debian.js';

const BOOTABLE_ROOTFS: RootfsFlavour = {
  name: 'bootable-rootfs',
  // systemd-sysv makes systemd /sbin/init; initramfs-tools pulls in udev,
  // which both the initramfs and the booted system use to find disks by UUID.
  packages: ['linux-image-cloud-amd64', 'systemd-sysv', 'initramfs-tools'],
  slim: true,
};

const DISK_BYTES = 1024 * MiB;
const PARTITIONS = bootAndRootPartitions(DISK_BYTES, 128 * MiB, '6775e57b');
const ROOT_UUID = PARTITIONS.find((p) => p.filesystem.mountpoint === '/')!.filesystem.uuid;

const PROFILE: ImageProfile = {
  name: 'bootable',
  keyFiles: [fileURLToPath(import.meta.url)],
  rootfs: BOOTABLE_ROOTFS,
  hostname: 'guestsh-boot',
  marker: { path: '/etc/guestsh-bootable.txt', content: 'guestsh test guest: bootable Debian bookworm built by testdata/bootable.ts' },
  users: [],
  diskBytes: DISK_BYTES,
  labelId: '0x6775e57b',
  partitions: PARTITIONS,
  finish: bootFiles,
};

export interface BootableImages extends DebianImages {
  /** The guest's kernel (a copy of its /boot/vmlinuz-<version>). */
  kernel: string;
  /** The guest's initramfs (a copy of its /boot/initrd.img-<version>). */
  initrd: string;
}

export interface BootableTruth extends DebianTruth {
  boot: {
    kernelVersion: string;
    /** Paths inside the guest. */
    guestKernel: string;
    guestInitrd: string;
    kernelSha256: string;
    initrdSha256: string;
    /** The kernel command line that boots the guest (root by filesystem UUID, serial console on ttyS0). */
    commandLine: string;
    /** How the kernel has virtio-blk: built in, or as a module the initramfs carries. */
    virtioBlk: 'built-in' | 'module';
  };
}

export async function ensureBootableImages(cacheDir: string): Promise<BootableImages> {
  const { images, dir } = await ensureProfileImages(cacheDir, PROFILE);
  return { ...images, kernel: path.join(dir, 'bootable.vmlinuz'), initrd: path.join(dir, 'bootable.initrd.img') };
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Copies the kernel and initramfs out of the guest's /boot content; their facts go into the truth file. */
async function bootFiles(bootContent: string, outputDir: string): Promise<Pick<BootableTruth, 'boot'>> {
  const kernels = fs.readdirSync(bootContent).filter((name) => name.startsWith('vmlinuz-'));
  if (kernels.length !== 1) throw new BuildError(`expected one kernel in the guest's /boot, found: ${kernels.join(', ') || 'none'}`);
  const kernelVersion = kernels[0]!.slice('vmlinuz-'.length);
  const kernel = path.join(bootContent, `vmlinuz-${kernelVersion}`);
  const initrd = path.join(bootContent, `initrd.img-${kernelVersion}`);
  if (!fs.existsSync(initrd)) throw new BuildError(`the guest has no initramfs for kernel ${kernelVersion} (update-initramfs did not run in debootstrap)`);
  const config = fs.readFileSync(path.join(bootContent, `config-${kernelVersion}`), 'utf8');
  const virtioBlk = /^CONFIG_VIRTIO_BLK=(.)$/m.exec(config)?.[1];
  if (virtioBlk !== 'y' && virtioBlk !== 'm') throw new BuildError(`kernel ${kernelVersion} has no virtio-blk driver`);
  step(`bootable: kernel ${kernelVersion} and its initramfs copied beside the image`);
  fs.copyFileSync(kernel, path.join(outputDir, 'bootable.vmlinuz'));
  fs.copyFileSync(initrd, path.join(outputDir, 'bootable.initrd.img'));
  return {
    boot: {
      kernelVersion,
      guestKernel: `/boot/vmlinuz-${kernelVersion}`,
      guestInitrd: `/boot/initrd.img-${kernelVersion}`,
      kernelSha256: sha256(kernel),
      initrdSha256: sha256(initrd),
      commandLine: `root=UUID=${ROOT_UUID} ro console=ttyS0`,
      virtioBlk: virtioBlk === 'y' ? 'built-in' : 'module',
    },
  };
}
