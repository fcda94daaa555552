// A session's drives: what the user added, and what qemu opens instead so
// that the image itself is written only by a transaction's commit (or, with
// transactions off, directly) and never by a read-only drive.

import { stat, writeFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { join } from 'node:path';
import { type BackingPolicy, createDisk, createOverlay, probeImage } from '../qemu/img.js';
import type { DriveConfig } from '../qemu/vm.js';
import { checkReadable, Transaction } from './transaction.js';

export interface DriveOptions {
  format?: string | undefined;
  readonly?: boolean | undefined;
  label?: string | undefined;
  blocksize?: number | undefined;
}

export interface Drive {
  /** What the user added (for messages and status). */
  path: string;
  format: string;
  readonly: boolean;
  label: string | undefined;
  /** What qemu opens: the transaction's overlay, or a throwaway overlay (read-only). */
  qemu: DriveConfig;
  /** The all-or-nothing write to the image, for read-write drives. */
  tx: Transaction | null;
  /**
   * qcow2 files qemu writes through, bottom first: the transaction overlay,
   * then one layer per savepoint since. The last is the active one.
   */
  layers: string[];
  /** QMP name of the active (top) block node. */
  top: string;
}

/** libguestfs's stand-in for the null device: 4096 bytes, one 4k sector. */
const NULL_DRIVE_BYTES = 4096;

/**
 * The drive for image `path` as the session's `index`-th. `runDir` is asked
 * for only when a throwaway overlay is needed; `backing` says which files
 * besides the image qemu may open for it.
 */
export async function openDrive(
  path: string,
  opts: DriveOptions,
  index: number,
  runDir: () => Promise<string>,
  transactions: boolean,
  backing: BackingPolicy,
): Promise<Drive> {
  const info = await probeImage(path, opts.format, backing);
  const format = opts.format ?? info.format;
  // The null device (guestfish's `-a /dev/null`): as libguestfs does, a
  // small blank raw file of the session's stands in for it (a disk of size 0
  // is "not ready" to the guest's SCSI layer, so it would have no sector
  // size, for one). Nothing of it outlives the session.
  if ((await stat(path)).isCharacterDevice()) {
    if (opts.format !== undefined && opts.format !== 'raw') throw new UsageError(`add_drive: for device '${path}', format must be 'raw'`);
    const file = join(await runDir(), `null${index}.img`);
    await writeFile(file, Buffer.alloc(NULL_DRIVE_BYTES));
    const qemu: DriveConfig = { file, format: 'raw', cache: 'unsafe', readonly: false, serial: opts.label, blocksize: opts.blocksize };
    return { path, format: 'raw', readonly: opts.readonly ?? false, label: opts.label, qemu, tx: null, layers: [], top: '' };
  }
  const readonly = opts.readonly ?? false;
  const base = { path, format, readonly, label: opts.label };
  if (readonly) {
    await checkReadable(path);
    // Like libguestfs: the guest may write (journal replay, for instance),
    // but the writes land in an overlay that is thrown away.
    const overlay = join(await runDir(), `overlay${index}.qcow2`);
    await createOverlay(path, format, overlay);
    return { ...base, qemu: { file: overlay, format: 'qcow2', cache: 'unsafe', readonly: false, serial: opts.label, blocksize: opts.blocksize }, tx: null, layers: [], top: '' };
  }
  if (!transactions) {
    return { ...base, qemu: { file: path, format, cache: 'writeback', readonly: false, serial: opts.label, blocksize: opts.blocksize }, tx: null, layers: [], top: '' };
  }
  const tx = await Transaction.begin(path, format);
  const qemu: DriveConfig = { file: tx.files.overlay, format: 'qcow2', cache: 'writeback', readonly: false, serial: opts.label, blocksize: opts.blocksize };
  return { ...base, qemu, tx, layers: [tx.files.overlay], top: `hd${index}` };
}

/** A blank qcow2 disk in the run directory, gone with the session. */
export async function scratchDrive(sizeBytes: bigint | number, { label, blocksize }: Pick<DriveOptions, 'label' | 'blocksize'>, index: number, runDir: string): Promise<Drive> {
  const file = join(runDir, `scratch${index}.qcow2`);
  await createDisk(file, 'qcow2', sizeBytes);
  return {
    path: file,
    format: 'qcow2',
    readonly: false,
    label,
    qemu: { file, format: 'qcow2', cache: 'unsafe', readonly: false, serial: label, blocksize },
    tx: null,
    layers: [],
    top: '',
  };
}
