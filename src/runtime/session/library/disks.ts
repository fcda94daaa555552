// Drives and host-side disk images: the add_drive family (local image files
// only) and disk_create/disk_format/disk_virtual_size/disk_has_backing_file
// over qemu-img.

import { existsSync, statSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { runTool } from '../../tool.js';
import { UsageError } from '../../errors.js';
import { checkImageFile } from '../../qemu/img.js';
import type { AddDriveOptions, DiskCreateOptions } from '../../../spec/api.js';
import type { LibraryTable, SessionHost } from '../host.js';
import { notSupported } from './util.js';

const REMOTE_OPTS = ['protocol', 'server', 'username', 'secret'] as const;
const NOT_ON_THE_COMMAND_LINE = ['name', 'copyonread', 'discard'] as const;
/** The sector sizes libguestfs accepts for blocksize (qemu's logical and physical block size). */
const BLOCKSIZES = [512, 4096];

function checkBlocksize(action: string, blocksize: number | undefined): void {
  if (blocksize !== undefined && !BLOCKSIZES.includes(blocksize)) {
    throw new UsageError(`${action}: blocksize parameter is invalid: ${blocksize} (512 or 4096)`);
  }
}

async function addDrive(s: SessionHost, filename: string, opt: AddDriveOptions, action = 'add_drive'): Promise<void> {
  const remote = REMOTE_OPTS.filter((k) => opt[k] !== undefined);
  if (remote.length) {
    throw notSupported(action, `optional argument ${remote.join(', ')}: guestsh opens local image files only (no network block devices)`);
  }
  // Every drive is a SCSI disk on one virtio-scsi controller (/dev/sdX, in
  // order): "scsi" names that; virtio-blk or ide would be other devices and names.
  if (opt.iface !== undefined && opt.iface !== 'scsi') {
    throw notSupported(action, `optional argument iface:${opt.iface}: guestsh attaches every drive as a SCSI disk on one virtio-scsi controller (/dev/sdX); leave iface out or give iface:scsi`);
  }
  checkBlocksize(action, opt.blocksize);
  for (const k of NOT_ON_THE_COMMAND_LINE) {
    if (opt[k] !== undefined) throw notSupported(action, `optional argument ${k}: the guestsh qemu command line does not expose it`);
  }
  if (opt.cachemode !== undefined && opt.cachemode !== 'writeback') {
    throw notSupported(action, 'optional argument cachemode: guestsh opens writable drives with cache=writeback only');
  }
  await s.addDrive(filename, { format: opt.format, readonly: opt.readonly, label: opt.label, blocksize: opt.blocksize });
}

async function qemuImgInfo(action: string, filename: string): Promise<Record<string, unknown>> {
  if (!existsSync(filename)) throw new UsageError(`${action}: ${filename}: No such file or directory`);
  await checkImageFile(filename, `${action}: ${filename}`);
  try {
    const { stdout } = await runTool('qemu-img', ['info', '--output=json', '-U', resolve(filename)]);
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new UsageError(`${action}: qemu-img info: ${(err.stderr ?? err.message).trim()}`);
  }
}

const QCOW2_PREALLOC: Record<string, string> = { off: 'off', sparse: 'off', metadata: 'metadata', full: 'falloc' };
const RAW_PREALLOC = new Set(['off', 'sparse', 'full']);
const ZEROS = Buffer.alloc(1 << 20);

/**
 * A raw image is written here, not by qemu-img (which rounds the size up to
 * a sector): exactly SIZE bytes, sparse or written out with zeros, as
 * libguestfs does. A block device is left as it is (its size is its own).
 */
async function createRaw(filename: string, sizeBytes: bigint, allocated: boolean): Promise<void> {
  const a = 'disk_create';
  const size = Number(sizeBytes);
  if (existsSync(filename) && statSync(filename).isBlockDevice()) return;
  let fh;
  try {
    fh = await open(filename, 'w', 0o666);
  } catch (e) {
    throw new UsageError(`${a}: cannot create raw file: ${filename}: ${(e as NodeJS.ErrnoException).code}`);
  }
  try {
    if (!allocated) {
      await fh.truncate(size);
    } else {
      for (let at = 0; at < size; ) {
        const n = Math.min(ZEROS.length, size - at);
        const { bytesWritten } = await fh.write(ZEROS, 0, n, at);
        at += bytesWritten;
      }
    }
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(filename).catch(() => {});
    throw new UsageError(`${a}: ${filename}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}: the image was not created`);
  }
}

async function diskCreate(filename: string, format: string, sizeArg: bigint | number, opt: DiskCreateOptions): Promise<void> {
  const a = 'disk_create';
  // A typed caller may pass the size as a number (-1 included).
  const size = BigInt(sizeArg);
  const backing = opt.backingfile;
  if (backing !== undefined) {
    if (size !== -1n) throw new UsageError(`${a}: if using a backing file, size must be passed as -1`);
  } else if (size < 0n) {
    throw new UsageError(`${a}: invalid size: ${size}`);
  }
  if (format !== 'raw' && format !== 'qcow2') throw new UsageError(`${a}: unsupported format '${format}'`);
  if (existsSync(filename) && statSync(filename).isCharacterDevice()) {
    throw new UsageError(`${a}: refusing to overwrite char device '${filename}'`);
  }
  const options: string[] = [];
  const prealloc = opt.preallocation;
  if (format === 'raw') {
    for (const k of ['backingfile', 'backingformat', 'compat', 'clustersize'] as const) {
      if (opt[k] !== undefined) throw new UsageError(`${a}: ${k} parameter cannot be used with raw format`);
    }
    if (prealloc !== undefined && !RAW_PREALLOC.has(prealloc)) {
      throw new UsageError(`${a}: invalid value for preallocation parameter '${prealloc}'`);
    }
    return createRaw(filename, size, prealloc === 'full');
  } else {
    if (backing !== undefined) {
      options.push(`backing_file=${backing}`);
      let bfmt = opt.backingformat;
      if (bfmt !== undefined && !/^[a-z0-9_]{1,16}$/i.test(bfmt)) {
        throw new UsageError(`${a}: invalid value for backingformat parameter '${bfmt}'`);
      }
      bfmt ??= (await qemuImgInfo(a, backing)).format as string;
      options.push(`backing_fmt=${bfmt}`);
    }
    if (prealloc !== undefined) {
      const p = QCOW2_PREALLOC[prealloc];
      if (!p) throw new UsageError(`${a}: invalid value for preallocation parameter '${prealloc}'`);
      options.push(`preallocation=${p}`);
    }
    const compat = opt.compat;
    if (compat !== undefined) {
      if (compat !== '0.10' && compat !== '1.1') throw new UsageError(`${a}: invalid value for compat parameter '${compat}'`);
      options.push(`compat=${compat}`);
    }
    const cs = opt.clustersize;
    if (cs !== undefined) {
      if (cs < 512 || cs > 2097152 || (cs & (cs - 1)) !== 0) throw new UsageError(`${a}: invalid value for clustersize parameter '${cs}'`);
      options.push(`cluster_size=${cs}`);
    }
  }
  // A leading "./" keeps a name such as "a:b" from being read as a protocol.
  const target = filename.startsWith('/') ? filename : `./${filename}`;
  const args = ['create', '-q', '-f', format, ...(options.length ? ['-o', options.join(',')] : []), target];
  if (backing === undefined) args.push(String(size));
  try {
    await runTool('qemu-img', args);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new UsageError(`${a}: qemu-img create: ${(err.stderr ?? err.message).trim()}`);
  }
}

export const diskActions: LibraryTable = {
  add_drive: (s, f, opt) => addDrive(s, f, opt),
  add_drive_ro: (s, f) => addDrive(s, f, { readonly: true }, 'add_drive_ro'),
  add_cdrom: (s, f) => addDrive(s, f, { readonly: true }, 'add_cdrom'),
  add_drive_scratch: (s, size, opt) => {
    if (opt.name !== undefined) throw notSupported('add_drive_scratch', 'optional argument name: the guestsh qemu command line does not expose it');
    checkBlocksize('add_drive_scratch', opt.blocksize);
    return s.addDriveScratch(size, { label: opt.label, blocksize: opt.blocksize });
  },
  remove_drive: () => {
    throw new UsageError('remove_drive: hotplugging support was removed in libguestfs 1.48');
  },
  disk_create: (_s, f, fmt, size, opt) => diskCreate(f, fmt, size, opt),
  disk_format: async (_s, f) => (await qemuImgInfo('disk_format', f)).format as string,
  disk_virtual_size: async (_s, f) => BigInt((await qemuImgInfo('disk_virtual_size', f))['virtual-size'] as number),
  disk_has_backing_file: async (_s, f) => {
    const b = (await qemuImgInfo('disk_has_backing_file', f))['backing-filename'];
    return b !== undefined && b !== null;
  },
  // virtio-scsi, as in libguestfs's direct backend.
  max_disks: () => 255,
};
