// Host-side image handling with qemu-img: probing an image (which doubles as
// the "missing or corrupt image" check) and creating qcow2 overlays.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { execa } from 'execa';
import { hostPackages } from '../../../guests/libguestfs/appliance.js';
import { UsageError } from '../errors.js';

export interface ImageInfo {
  format: string;
  virtualSize: number;
}

function qemuImgFailure(e: unknown): string {
  const err = e as { code?: string; stderr?: string; shortMessage?: string };
  if (err.code === 'ENOENT') return `qemu-img is not installed; install it with: apt-get install ${hostPackages.qemuImg}`;
  const line = (err.stderr ?? err.shortMessage ?? String(e)).trim().split('\n').pop() ?? '';
  return line.replace(/^qemu-img: /, '');
}

export async function probeImage(path: string, format?: string): Promise<ImageInfo> {
  if (!existsSync(path)) throw new UsageError(`disk image '${path}' does not exist`);
  try {
    const { stdout } = await execa('qemu-img', ['info', '--output=json', '-U', ...(format ? ['-f', format] : []), path]);
    const info = JSON.parse(stdout) as { format: string; 'virtual-size': number };
    return { format: info.format, virtualSize: info['virtual-size'] };
  } catch (e) {
    throw new UsageError(`disk image '${path}' cannot be opened: ${qemuImgFailure(e)}`);
  }
}

export async function createOverlay(base: string, baseFormat: string, overlay: string): Promise<void> {
  try {
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', resolve(base), '-F', baseFormat, overlay]);
  } catch (e) {
    throw new UsageError(`cannot create an overlay over '${base}': ${qemuImgFailure(e)}`);
  }
}

/**
 * A blank image of `sizeBytes` bytes: sparse, or with every block allocated
 * (`preallocate`: guestfish's alloc).
 */
export async function createDisk(path: string, format: string, sizeBytes: number | bigint, opts: { preallocate?: boolean } = {}): Promise<void> {
  try {
    await execa('qemu-img', ['create', '-q', '-f', format, ...(opts.preallocate ? ['-o', 'preallocation=full'] : []), path, String(sizeBytes)]);
  } catch (e) {
    throw new UsageError(`cannot create disk '${path}': ${qemuImgFailure(e)}`);
  }
}
