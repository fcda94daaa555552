// The `windows` guest: a small NTFS disk laid out like a Windows system
// volume, just enough for libguestfs' Windows inspection and the hivex calls.
// It is not Windows and boots nothing; no Microsoft file is in it.
//
//  1. Registry hives from text: this file writes an empty hive (the regf
//     format's base block, one hbin, a root key and its security cell; hivex
//     cannot create hives and no Debian package ships an empty one), then
//     Debian's `hivexregedit --merge` (libwin-hivex-perl) merges .reg text
//     generated from the REGISTRY table below into it, on the host (hives are
//     plain files; nothing is mounted).
//  2. A stand-in C:\Windows\System32\cmd.exe: a bare PE32+ x86-64 header, as
//     inspection requires the file and reads the architecture from it.
//  3. The disk, through a guestsh Session: sfdisk writes the MBR on the host
//     (fixed disk signature, which MountedDevices refers to); mkfs ntfs,
//     ntfslabel --new-serial (through the `debug sh` call: libguestfs has no
//     call to set an NTFS serial), mount and upload run in the appliance.
//
// Outputs, in one cache directory named by the hash of this file:
//   windows.img         raw, sparse, MBR: p1 type 07 NTFS "GUESTSH-WIN"
//   windows.qcow2       the same disk converted by qemu-img
//   windows.truth.json  what inspection and the hivex calls should report (WindowsTruth)
//
// Determinism: the hive files are byte-identical between builds (fixed
// timestamps, our own writer, hivex's deterministic merge), as are cmd.exe,
// the partition table, the NTFS serial (its UUID) and label. Not fixed:
// mkntfs' and ntfs-3g's timestamps and object ids, so the image bytes differ.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError, buildOnce, cacheKey, makeTempDir, publish, removeTree, run, step } from './build-support.js';
import { GUEST_EPOCH } from './debian-rootfs.js';
import { createPartitionedDisk, sfdiskScript, sh, withBuildSession, type GuestImages, type TruthPartition } from './lvm.js';

const MiB = 1024 * 1024;
const SECTOR_BYTES = 512;
const DISK_BYTES = 64 * MiB;
/** MBR disk signature: MountedDevices' \DosDevices\C: value starts with it. */
const DISK_SIGNATURE = 0x6775e57d;
const DISK_LABEL_ID = `0x${DISK_SIGNATURE.toString(16)}`;
const NTFS_START_SECTOR = MiB / SECTOR_BYTES;
const PARTITIONS: TruthPartition[] = [
  { number: 1, startSector: NTFS_START_SECTOR, sizeSectors: DISK_BYTES / SECTOR_BYTES - NTFS_START_SECTOR, type: '7', bootable: true },
];
const NTFS = { device: '/dev/sda1', label: 'GUESTSH-WIN', serial: '6775E57D00000001' };

const PRODUCT_NAME = 'Windows 10 Pro';
const MAJOR_VERSION = 10;
const MINOR_VERSION = 0;
const HOSTNAME = 'guestsh-win';
const COMPUTER_NAME = 'GUESTSH-WIN';
const SYSTEMROOT = '/Windows';
const MARKER = { path: '/guestsh-windows.txt', content: 'guestsh test guest: an NTFS volume laid out like Windows, built by testdata/windows.ts' };

export type RegistryValue =
  | { name: string; type: 'sz'; value: string }
  | { name: string; type: 'dword'; value: number }
  | { name: string; type: 'binary'; value: number[] };

export interface RegistryKey {
  /** Path below the hive root, backslash-separated, e.g. "Microsoft\\Windows NT\\CurrentVersion". */
  path: string;
  values: RegistryValue[];
}

export interface RegistryHive {
  /** File name under Windows/System32/config. */
  file: 'SYSTEM' | 'SOFTWARE';
  /** hivexregedit's --prefix: the key the hive is loaded under in Windows. */
  prefix: string;
  keys: RegistryKey[];
}

/** Little-endian bytes of MountedDevices' MBR form: disk signature (4), partition byte offset (8). */
function mbrMountedDevice(signature: number, offsetBytes: number): number[] {
  const blob = Buffer.alloc(12);
  blob.writeUInt32LE(signature, 0);
  blob.writeBigUInt64LE(BigInt(offsetBytes), 4);
  return [...blob];
}

const APPLICATION = { key: 'GuestshDemoApp', name: 'guestsh demo application', version: '1.2.3', publisher: 'guestsh tests' };

const REGISTRY: RegistryHive[] = [
  {
    file: 'SOFTWARE',
    prefix: 'HKEY_LOCAL_MACHINE\\SOFTWARE',
    keys: [
      {
        path: 'Microsoft\\Windows NT\\CurrentVersion',
        values: [
          { name: 'ProductName', type: 'sz', value: PRODUCT_NAME },
          { name: 'EditionID', type: 'sz', value: 'Professional' },
          { name: 'InstallationType', type: 'sz', value: 'Client' },
          { name: 'CurrentVersion', type: 'sz', value: '6.3' },
          { name: 'CurrentBuild', type: 'sz', value: '19045' },
          { name: 'CurrentMajorVersionNumber', type: 'dword', value: MAJOR_VERSION },
          { name: 'CurrentMinorVersionNumber', type: 'dword', value: MINOR_VERSION },
          { name: 'SystemRoot', type: 'sz', value: 'C:\\Windows' },
        ],
      },
      {
        path: `Microsoft\\Windows\\CurrentVersion\\Uninstall\\${APPLICATION.key}`,
        values: [
          { name: 'DisplayName', type: 'sz', value: APPLICATION.name },
          { name: 'DisplayVersion', type: 'sz', value: APPLICATION.version },
          { name: 'Publisher', type: 'sz', value: APPLICATION.publisher },
        ],
      },
    ],
  },
  {
    file: 'SYSTEM',
    prefix: 'HKEY_LOCAL_MACHINE\\SYSTEM',
    keys: [
      {
        path: 'Select',
        values: [
          { name: 'Current', type: 'dword', value: 1 },
          { name: 'Default', type: 'dword', value: 1 },
          { name: 'Failed', type: 'dword', value: 0 },
          { name: 'LastKnownGood', type: 'dword', value: 1 },
        ],
      },
      { path: 'ControlSet001\\Control\\ComputerName\\ComputerName', values: [{ name: 'ComputerName', type: 'sz', value: COMPUTER_NAME }] },
      {
        path: 'ControlSet001\\Services\\Tcpip\\Parameters',
        values: [
          { name: 'Hostname', type: 'sz', value: HOSTNAME },
          { name: 'Domain', type: 'sz', value: '' },
        ],
      },
      {
        path: 'MountedDevices',
        values: [{ name: '\\DosDevices\\C:', type: 'binary', value: mbrMountedDevice(DISK_SIGNATURE, NTFS_START_SECTOR * SECTOR_BYTES) }],
      },
    ],
  },
];

/** What inspection and the hivex calls should report on the `windows` guest. */
export interface WindowsTruth {
  type: 'windows';
  distro: 'windows';
  productName: string;
  productVariant: string;
  majorVersion: number;
  minorVersion: number;
  hostname: string;
  arch: 'x86_64';
  /** As inspect_get_windows_systemroot reports it. */
  systemroot: string;
  currentControlSet: string;
  driveMappings: Record<string, string>;
  applications: { name: string; displayName: string; version: string; publisher: string }[];
  marker: { path: string; content: string };
  disk: { sizeBytes: number; sectorSize: number; partitionTable: 'dos'; labelId: string };
  partitions: TruthPartition[];
  ntfs: { device: string; label: string; uuid: string };
  /** Every hive, with its guest path and the keys and values the builder merged into it. */
  hives: (RegistryHive & { guestPath: string; rootName: string })[];
}

export async function ensureWindowsImages(cacheDir: string): Promise<GuestImages> {
  const key = cacheKey([fileURLToPath(import.meta.url)], {});
  const outputDir = path.join(cacheDir, `windows-${key}`);
  await buildOnce(outputDir, async () => {
    const work = makeTempDir(cacheDir, 'windows');
    try {
      const staged = path.join(work, 'out');
      fs.mkdirSync(staged);
      await buildImages(work, imagesIn(staged));
      await publish(staged, outputDir);
    } finally {
      await removeTree(work);
    }
  });
  return imagesIn(outputDir);
}

function imagesIn(dir: string): GuestImages {
  return { raw: path.join(dir, 'windows.img'), qcow2: path.join(dir, 'windows.qcow2'), truth: path.join(dir, 'windows.truth.json') };
}

const CONFIG_DIR = `${SYSTEMROOT}/System32/config`;
const HIVE_ROOT_NAME = 'ROOT';

async function buildImages(work: string, images: GuestImages): Promise<void> {
  const hiveFiles: string[] = [];
  for (const hive of REGISTRY) {
    step(`windows: building the ${hive.file} hive (empty regf, then hivexregedit --merge of ${hive.keys.length} keys)`);
    const file = path.join(work, hive.file);
    fs.writeFileSync(file, emptyHive(HIVE_ROOT_NAME));
    const regFile = path.join(work, `${hive.file}.reg`);
    fs.writeFileSync(regFile, regText(hive));
    await hivexregedit(['--merge', '--prefix', hive.prefix, file, regFile]);
    await checkHive(file, hive);
    hiveFiles.push(file);
  }
  const cmdExe = path.join(work, 'cmd.exe');
  fs.writeFileSync(cmdExe, pe32PlusHeader());

  step(`windows: creating ${DISK_BYTES / MiB} MiB sparse raw disk with an MBR (one NTFS partition)`);
  createPartitionedDisk(images.raw, DISK_BYTES);
  await run('sfdisk', ['--quiet', images.raw], { input: sfdiskScript(DISK_LABEL_ID, PARTITIONS) });

  await withBuildSession(images.raw, 'windows', async (s) => {
    step(`windows: mkfs ntfs "${NTFS.label}" on ${NTFS.device}, serial ${NTFS.serial}`);
    await s.call('mkfs', ['ntfs', NTFS.device], { label: NTFS.label });
    await sh(s, `ntfslabel --new-serial=${NTFS.serial} ${NTFS.device}`);
    await s.call('mount', [NTFS.device, '/']);
    step(`windows: uploading ${REGISTRY.map((h) => h.file).join(', ')} to ${CONFIG_DIR} and System32/cmd.exe`);
    await s.call('mkdir_p', [CONFIG_DIR]);
    for (const [i, hive] of REGISTRY.entries()) await s.call('upload', [hiveFiles[i]!, `${CONFIG_DIR}/${hive.file}`]);
    await s.call('upload', [cmdExe, `${SYSTEMROOT}/System32/cmd.exe`]);
    await s.call('write', [MARKER.path, Buffer.from(`${MARKER.content}\r\n`)]);
    await s.call('sync', []);
    await s.call('umount_all', []);
  });

  step('windows: converting to qcow2');
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', images.raw, images.qcow2]);
  const truth: WindowsTruth = {
    type: 'windows',
    distro: 'windows',
    productName: PRODUCT_NAME,
    productVariant: 'Client',
    majorVersion: MAJOR_VERSION,
    minorVersion: MINOR_VERSION,
    hostname: HOSTNAME,
    arch: 'x86_64',
    systemroot: SYSTEMROOT,
    currentControlSet: 'ControlSet001',
    driveMappings: { C: NTFS.device },
    applications: [{ name: APPLICATION.key, displayName: APPLICATION.name, version: APPLICATION.version, publisher: APPLICATION.publisher }],
    marker: MARKER,
    disk: { sizeBytes: DISK_BYTES, sectorSize: SECTOR_BYTES, partitionTable: 'dos', labelId: DISK_LABEL_ID },
    partitions: PARTITIONS,
    ntfs: { device: NTFS.device, label: NTFS.label, uuid: NTFS.serial },
    hives: REGISTRY.map((hive) => ({ ...hive, guestPath: `${CONFIG_DIR}/${hive.file}`, rootName: HIVE_ROOT_NAME })),
  };
  fs.writeFileSync(images.truth, JSON.stringify(truth, null, 2) + '\n');
}

// --- .reg text --------------------------------------------------------------

function regString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A hive's keys as regedit's text format, which hivexregedit --merge reads. */
function regText(hive: RegistryHive): string {
  const lines = ['Windows Registry Editor Version 5.00', ''];
  const emitted = new Set<string>();
  for (const key of hive.keys) {
    // hivexregedit creates a key only below one that exists: list the ancestors first.
    const parts = key.path.split('\\');
    for (let depth = 1; depth < parts.length; depth++) {
      const ancestor = parts.slice(0, depth).join('\\');
      if (!emitted.has(ancestor)) lines.push(`[${hive.prefix}\\${ancestor}]`, '');
      emitted.add(ancestor);
    }
    emitted.add(key.path);
    lines.push(`[${hive.prefix}\\${key.path}]`);
    for (const v of key.values) {
      const data =
        v.type === 'sz'
          ? regString(v.value)
          : v.type === 'dword'
            ? `dword:${v.value.toString(16).padStart(8, '0')}`
            : `hex:${v.value.map((b) => b.toString(16).padStart(2, '0')).join(',')}`;
      lines.push(`${regString(v.name)}=${data}`);
    }
    lines.push('');
  }
  return lines.join('\r\n');
}

// --- an empty registry hive ----------------------------------------------------

/** GUEST_EPOCH as a Windows FILETIME (100 ns ticks since 1601). */
const FILETIME = (BigInt(GUEST_EPOCH) + 11644473600n) * 10_000_000n;
const BASE_BLOCK_BYTES = 0x1000;
const HBIN_BYTES = 0x1000;
const HBIN_HEADER_BYTES = 0x20;

/**
 * A hive with a root key and nothing else, in the regf format version 1.3:
 * base block (signature, sequence numbers, timestamp, root cell offset, hbin
 * data size, checksum), one 4 KiB hbin holding the root key's nk cell, the
 * sk cell it references (hivex requires one to add children) and a free cell
 * for the rest. Cell offsets count from the first hbin.
 */
export function emptyHive(rootName: string): Buffer {
  const file = Buffer.alloc(BASE_BLOCK_BYTES + HBIN_BYTES);
  const base = file.subarray(0, BASE_BLOCK_BYTES);
  const bins = file.subarray(BASE_BLOCK_BYTES);

  const NO_CELL = 0xffffffff;
  const nkOffset = HBIN_HEADER_BYTES;
  const nkBytes = align8(4 + 0x4c + rootName.length);
  const skOffset = nkOffset + nkBytes;
  const descriptor = securityDescriptor();
  const skBytes = align8(4 + 0x14 + descriptor.length);
  const freeOffset = skOffset + skBytes;

  // hbin header
  bins.write('hbin', 0, 'latin1');
  bins.writeUInt32LE(0, 4); // this hbin's offset from the first
  bins.writeUInt32LE(HBIN_BYTES, 8);
  bins.writeBigUInt64LE(FILETIME, 0x14);

  // root key (nk): a hive entry that cannot be deleted, with an ASCII name
  const nk = bins.subarray(nkOffset);
  nk.writeInt32LE(-nkBytes, 0); // negative size: allocated
  nk.write('nk', 4, 'latin1');
  nk.writeUInt16LE(0x0004 | 0x0008 | 0x0020, 6); // KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME
  nk.writeBigUInt64LE(FILETIME, 8);
  nk.writeUInt32LE(0, 0x10); // access bits
  nk.writeUInt32LE(NO_CELL, 0x14); // parent: none for the root... Windows stores a dummy value here
  nk.writeUInt32LE(0, 0x18); // subkeys
  nk.writeUInt32LE(0, 0x1c); // volatile subkeys
  nk.writeUInt32LE(NO_CELL, 0x20); // subkey list
  nk.writeUInt32LE(NO_CELL, 0x24); // volatile subkey list
  nk.writeUInt32LE(0, 0x28); // values
  nk.writeUInt32LE(NO_CELL, 0x2c); // value list
  nk.writeUInt32LE(skOffset, 0x30); // security cell
  nk.writeUInt32LE(NO_CELL, 0x34); // class name
  // 0x38..0x4b: largest subkey name, class, value name, value data; work var: all 0
  nk.writeUInt16LE(rootName.length, 0x4c);
  nk.writeUInt16LE(0, 0x4e); // class name length
  nk.write(rootName, 0x50, 'latin1');

  // security (sk): a one-element ring pointing at itself, used by the root key
  const sk = bins.subarray(skOffset);
  sk.writeInt32LE(-skBytes, 0);
  sk.write('sk', 4, 'latin1');
  sk.writeUInt32LE(skOffset, 8); // flink
  sk.writeUInt32LE(skOffset, 12); // blink
  sk.writeUInt32LE(1, 16); // reference count
  sk.writeUInt32LE(descriptor.length, 20);
  descriptor.copy(sk, 24);

  // the rest of the hbin: one free cell (positive size)
  bins.writeInt32LE(HBIN_BYTES - freeOffset, freeOffset);

  // base block
  base.write('regf', 0, 'latin1');
  base.writeUInt32LE(1, 4); // primary sequence number
  base.writeUInt32LE(1, 8); // secondary sequence number: equal, so the hive is consistent
  base.writeBigUInt64LE(FILETIME, 0x0c);
  base.writeUInt32LE(1, 0x14); // major version
  base.writeUInt32LE(3, 0x18); // minor version
  base.writeUInt32LE(0, 0x1c); // file type: primary
  base.writeUInt32LE(1, 0x20); // file format: direct memory load
  base.writeUInt32LE(nkOffset, 0x24); // root cell
  base.writeUInt32LE(HBIN_BYTES, 0x28); // hbin data size
  base.writeUInt32LE(1, 0x2c); // clustering factor
  let checksum = 0;
  for (let i = 0; i < 0x1fc; i += 4) checksum = (checksum ^ base.readUInt32LE(i)) >>> 0;
  base.writeUInt32LE(checksum, 0x1fc);
  return file;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * A self-relative security descriptor: owner and group BUILTIN\Administrators,
 * a DACL granting KEY_ALL_ACCESS to Everyone.
 */
function securityDescriptor(): Buffer {
  const sid = (authority: number, subs: number[]) => {
    const b = Buffer.alloc(8 + 4 * subs.length);
    b.writeUInt8(1, 0); // revision
    b.writeUInt8(subs.length, 1);
    b.writeUIntBE(authority, 2, 6);
    subs.forEach((sub, i) => b.writeUInt32LE(sub, 8 + 4 * i));
    return b;
  };
  const administrators = sid(5, [32, 544]);
  const everyone = sid(1, [0]);
  const ace = Buffer.alloc(8 + everyone.length);
  ace.writeUInt8(0, 0); // ACCESS_ALLOWED_ACE_TYPE
  ace.writeUInt8(0x02, 1); // CONTAINER_INHERIT_ACE
  ace.writeUInt16LE(ace.length, 2);
  ace.writeUInt32LE(0x000f003f, 4); // KEY_ALL_ACCESS
  everyone.copy(ace, 8);
  const acl = Buffer.alloc(8 + ace.length);
  acl.writeUInt8(2, 0); // ACL revision
  acl.writeUInt16LE(acl.length, 2);
  acl.writeUInt16LE(1, 4); // ACE count
  ace.copy(acl, 8);
  const header = Buffer.alloc(20);
  header.writeUInt8(1, 0); // revision
  header.writeUInt16LE(0x8004, 2); // SE_SELF_RELATIVE | SE_DACL_PRESENT
  const ownerOffset = header.length;
  const groupOffset = ownerOffset + administrators.length;
  const daclOffset = groupOffset + administrators.length;
  header.writeUInt32LE(ownerOffset, 4);
  header.writeUInt32LE(groupOffset, 8);
  header.writeUInt32LE(0, 12); // no SACL
  header.writeUInt32LE(daclOffset, 16);
  return Buffer.concat([header, administrators, administrators, acl]);
}

// --- a stand-in cmd.exe -------------------------------------------------------

/**
 * The headers of an x86-64 console executable and no code: a DOS header
 * pointing at the PE signature, a COFF header (machine AMD64, no sections) and
 * a PE32+ optional header. Enough for file(1), which inspection asks for the
 * Windows architecture; it would not run.
 */
function pe32PlusHeader(): Buffer {
  const PE_OFFSET = 0x40;
  const OPTIONAL_HEADER_BYTES = 0xf0;
  const file = Buffer.alloc(PE_OFFSET + 4 + 20 + OPTIONAL_HEADER_BYTES);
  file.write('MZ', 0, 'latin1');
  file.writeUInt32LE(PE_OFFSET, 0x3c); // e_lfanew
  file.write('PE\0\0', PE_OFFSET, 'latin1');
  const coff = PE_OFFSET + 4;
  file.writeUInt16LE(0x8664, coff); // IMAGE_FILE_MACHINE_AMD64
  file.writeUInt16LE(0, coff + 2); // sections
  file.writeUInt32LE(0, coff + 4); // timestamp
  file.writeUInt16LE(OPTIONAL_HEADER_BYTES, coff + 16);
  file.writeUInt16LE(0x0022, coff + 18); // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
  const opt = coff + 20;
  file.writeUInt16LE(0x020b, opt); // PE32+
  file.writeBigUInt64LE(0x140000000n, opt + 24); // image base
  file.writeUInt32LE(0x1000, opt + 32); // section alignment
  file.writeUInt32LE(0x200, opt + 36); // file alignment
  file.writeUInt16LE(6, opt + 40); // OS version 6.0
  file.writeUInt16LE(6, opt + 48); // subsystem version 6.0
  file.writeUInt32LE(0x1000, opt + 56); // size of image
  file.writeUInt32LE(0x200, opt + 60); // size of headers
  file.writeUInt16LE(3, opt + 68); // IMAGE_SUBSYSTEM_WINDOWS_CUI
  file.writeUInt32LE(16, opt + 108); // number of data directories
  return file;
}

/** build-support names a missing tool's package by the tool's name; hivexregedit's is libwin-hivex-perl. */
async function hivexregedit(args: string[]): Promise<string> {
  try {
    return await run('hivexregedit', args);
  } catch (error) {
    if (error instanceof BuildError && error.message.startsWith('hivexregedit not found')) {
      throw new BuildError('hivexregedit not found: apt-get install -y libwin-hivex-perl');
    }
    throw error;
  }
}

/** Reject the build unless every key and value of `hive` reads back from the file (hivexregedit --export). */
async function checkHive(file: string, hive: RegistryHive): Promise<void> {
  const exported = await hivexregedit(['--export', '--prefix', hive.prefix, file, '\\']);
  const expected = regText(hive).split('\r\n').filter((line) => line.startsWith('['));
  const missing = expected.find((line) => !exported.includes(line));
  if (missing) throw new BuildError(`hivexregedit --merge left ${missing} out of ${hive.file}`);
}
