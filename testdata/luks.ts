// The `luks` guest: the cached Debian root with its root filesystem inside
// LUKS, built like the `lvm` guest (lvm.ts) by driving the appliance through a
// guestsh Session: luks_format and cryptsetup_open run cryptsetup inside the
// appliance, the key travelling as a Key argument. Nothing is mounted on the host.
//
// Outputs, in one cache directory named by the hash of this file, lvm.ts
// (whose helpers it uses) and the root tarball's name:
//   luks.img         raw, sparse, MBR: p1 /boot ext4 "boot", p2 LUKS2 "cryptroot"
//                    holding / ext4 "root"; /etc/crypttab names it cryptroot
//   luks.qcow2       the same disk converted by qemu-img
//   luks.truth.json  what tests may expect to find (LuksTruth, key included)
//
// Determinism: the partition table, the LUKS UUID and label, the filesystem
// UUIDs and labels and every file's content, owner, mode and mtime are fixed.
// luks_format has no UUID or PBKDF argument, so the builder sets the UUID with
// `cryptsetup luksUUID --uuid` and a fixed PBKDF2 count (instead of the
// benchmarked argon2id) with `cryptsetup luksConvertKey` through the
// `debug sh` call. Not fixed, so the image bytes differ between builds: the
// LUKS volume key and salts, hence all ciphertext; ext4 hash seeds and times
// as in the `lvm` guest.

import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError, cacheKey, run, step } from './build-support.js';
import { debianRootfsTarball } from './debian-rootfs.js';
import {
  buildLayeredGuest,
  createPartitionedDisk,
  debianFacts,
  fillDebianRoot,
  fstabFor,
  sfdiskScript,
  sh,
  withBuildSession,
  type GuestImages,
  type LayeredDebianTruth,
  type TruthFilesystem,
  type TruthPartition,
} from './lvm.js';

const MiB = 1024 * 1024;
const SECTOR_BYTES = 512;
const DISK_BYTES = 1024 * MiB;
const DISK_LABEL_ID = '0x6775e57c';
const BOOT_START_SECTOR = MiB / SECTOR_BYTES;
const BOOT_SECTORS = (64 * MiB) / SECTOR_BYTES;
const LUKS_START_SECTOR = BOOT_START_SECTOR + BOOT_SECTORS;

const HOSTNAME = 'guestsh-luks';
const MARKER = { path: '/etc/guestsh-luks.txt', content: 'guestsh test guest: Debian bookworm with a LUKS root built by testdata/luks.ts' };

/** The passphrase in key slot 0. Tests pass their own copy; the truth file records it too. */
export const LUKS_KEY = 'guestsh-luks-key';
const LUKS = {
  device: '/dev/sda2',
  uuid: '6775e57c-c0de-4f5e-8000-00000000c0de',
  label: 'guestsh-cryptroot',
  keyslot: 0,
  /** Name in /etc/crypttab, and the name the builder opens it under. */
  mapName: 'cryptroot',
  /** Key slot 0's PBKDF after the builder's luksConvertKey. */
  pbkdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 },
};

const PARTITIONS: TruthPartition[] = [
  { number: 1, startSector: BOOT_START_SECTOR, sizeSectors: BOOT_SECTORS, type: '83', bootable: true },
  { number: 2, startSector: LUKS_START_SECTOR, sizeSectors: DISK_BYTES / SECTOR_BYTES - LUKS_START_SECTOR, type: '83', bootable: false },
];

const FILESYSTEMS: TruthFilesystem[] = [
  { device: `/dev/mapper/${LUKS.mapName}`, type: 'ext4', uuid: '6775e57c-2007-4f5e-8000-000000000002', label: 'root', mountpoint: '/' },
  { device: '/dev/sda1', type: 'ext4', uuid: '6775e57c-b007-4f5e-8000-000000000001', label: 'boot', mountpoint: '/boot' },
];

export interface LuksTruth extends LayeredDebianTruth {
  luks: {
    device: string;
    uuid: string;
    label: string;
    keyslot: number;
    key: string;
    /** The name /etc/crypttab gives the opened device. */
    mapName: string;
    /** The guest's /etc/crypttab, as written. */
    crypttab: string;
    pbkdf: { type: string; hash: string; iterations: number };
  };
}

export async function ensureLuksImages(cacheDir: string): Promise<GuestImages> {
  const rootfsName = path.basename(await debianRootfsTarball(cacheDir));
  const helpers = fileURLToPath(new URL('./lvm.ts', import.meta.url));
  const key = cacheKey([fileURLToPath(import.meta.url), helpers], { rootfs: rootfsName });
  return buildLayeredGuest(cacheDir, 'luks', key, async (rootTar, _work, images) => {
    step(`luks: creating ${DISK_BYTES / MiB} MiB sparse raw disk with an MBR (boot + LUKS)`);
    createPartitionedDisk(images.raw, DISK_BYTES);
    await run('sfdisk', ['--quiet', images.raw], { input: sfdiskScript(DISK_LABEL_ID, PARTITIONS) });

    const truthBase = await debianFacts(rootTar);
    // The root by its filesystem UUID, so inspection resolves it whatever name the LUKS device is opened under.
    const rootFs = FILESYSTEMS.find((f) => f.mountpoint === '/')!;
    const fstab = fstabFor(FILESYSTEMS, `UUID=${rootFs.uuid}`);
    const crypttab = `# <target name> <source device> <key file> <options>\n${LUKS.mapName}\tUUID=${LUKS.uuid}\tnone\tluks,discard\n`;
    await withBuildSession(images.raw, 'luks', async (s) => {
      step(`luks: luks_format ${LUKS.device} (key slot ${LUKS.keyslot}; cryptsetup benchmarks its PBKDF, slow under TCG)`);
      await s.call('luks_format', [LUKS.device, LUKS_KEY, LUKS.keyslot]);
      step(`luks: setting the LUKS UUID ${LUKS.uuid}, label "${LUKS.label}" and a fixed, cheap PBKDF (cryptsetup luksUUID, config, luksConvertKey)`);
      await sh(
        s,
        [
          `cryptsetup luksUUID -q --uuid ${LUKS.uuid} ${LUKS.device}`,
          `cryptsetup config --label ${LUKS.label} ${LUKS.device}`,
          // The benchmarked argon2id costs ~10 s per open under TCG; a fixed
          // PBKDF2 count makes opens fast and the same on every machine.
          `printf %s '${LUKS_KEY}' | cryptsetup luksConvertKey --key-file=- --key-slot ${LUKS.keyslot} --pbkdf ${LUKS.pbkdf.type} --pbkdf-force-iterations ${LUKS.pbkdf.iterations} --hash ${LUKS.pbkdf.hash} ${LUKS.device}`,
        ].join(' && '),
      );
      const uuid = String(await s.call('luks_uuid', [LUKS.device]));
      if (uuid !== LUKS.uuid) throw new BuildError(`cryptsetup luksUUID did not set the LUKS UUID (got ${uuid})`);
      step(`luks: cryptsetup_open ${LUKS.device} as ${LUKS.mapName}`);
      await s.call('cryptsetup_open', [LUKS.device, LUKS_KEY, LUKS.mapName]);
      for (const f of FILESYSTEMS) {
        step(`luks: mke2fs ext4 "${f.label}" on ${f.device} (UUID ${f.uuid})`);
        await s.call('mke2fs', [f.device], { fstype: 'ext4', label: f.label, uuid: f.uuid });
      }
      await fillDebianRoot(s, 'luks', rootTar, FILESYSTEMS, {
        hostname: HOSTNAME,
        fstab,
        extraFiles: [MARKER, { path: '/etc/crypttab', content: crypttab.trimEnd() }],
      });
      await s.call('cryptsetup_close', [`/dev/mapper/${LUKS.mapName}`]);
    });

    const truth: LuksTruth = {
      ...truthBase,
      hostname: HOSTNAME,
      markers: [MARKER],
      disk: { sizeBytes: DISK_BYTES, sectorSize: SECTOR_BYTES, partitionTable: 'dos', labelId: DISK_LABEL_ID },
      partitions: PARTITIONS,
      filesystems: FILESYSTEMS,
      fstab,
      luks: { ...LUKS, key: LUKS_KEY, crypttab },
    };
    return truth;
  });
}
