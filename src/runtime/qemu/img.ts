// Host-side image handling with qemu-img: probing an image (which doubles as
// the "missing, corrupt or hostile image" check) and creating qcow2 overlays.
// Every file name reaches qemu-img as an absolute path: a relative one could
// start with '-' (an option to qemu-img) or hold a ':' (a protocol to qemu).

import type { Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { runTool } from '../tool.js';
import { hostPackages } from '../../../guests/libguestfs/appliance.js';
import { UsageError } from '../errors.js';

export interface ImageInfo {
  format: string;
  virtualSize: number;
}

/**
 * Which files besides the image itself qemu may open for it, as backing
 * files or a qcow2's external data file: none (recipes), those in the
 * image's own directory (the default), or any (--allow-backing). A qcow2
 * can name any host file as either, and the guest then reads it (a backing
 * file) or a commit writes it (a data file).
 */
export type BackingPolicy = 'none' | 'own-directory' | 'any';

interface QemuImgInfo {
  format: string;
  'virtual-size': number;
  'backing-filename'?: string;
  /** The backing file resolved against the image's directory (absolute when it is a local file). */
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: { type?: string; data?: { 'data-file'?: string } };
}

function qemuImgFailure(e: unknown): string {
  const err = e as { code?: string; stderr?: string; shortMessage?: string };
  if (err.code === 'ENOENT') return `qemu-img is not installed; install it with: apt-get install ${hostPackages.qemuImg}`;
  const line = (err.stderr ?? err.shortMessage ?? String(e)).trim().split('\n').pop() ?? '';
  return line.replace(/^qemu-img: /, '');
}

/** The null device's numbers (1:3): guestfish's `-a /dev/null`, an empty disk that opens at once. */
const NULL_DEVICE = (1 << 8) | 3;

function kindOf(st: Stats): string | null {
  if (st.isFile() || st.isBlockDevice()) return null;
  if (st.isCharacterDevice() && st.rdev === NULL_DEVICE) return null;
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/**
 * Refuses what is not a regular file or a block device before qemu opens it:
 * opening a FIFO blocks until someone writes to it, so qemu-img and qemu
 * would wait for ever. `what` names the file in the message.
 */
export async function checkImageFile(path: string, what: string): Promise<void> {
  const st = await stat(path).catch(() => null);
  if (!st) throw new UsageError(`${what} does not exist`);
  const kind = kindOf(st);
  if (kind) throw new UsageError(`${what} is ${kind}, not a disk image file or block device`);
}

async function qemuImgInfo(abs: string, format: string | undefined, what: string): Promise<QemuImgInfo> {
  try {
    const { stdout } = await runTool('qemu-img', ['info', '--output=json', '-U', ...(format ? ['-f', format] : []), abs]);
    return JSON.parse(stdout) as QemuImgInfo;
  } catch (e) {
    throw new UsageError(`${what} cannot be opened: ${qemuImgFailure(e)}`);
  }
}

const ALLOW = 'give --allow-backing to follow it';

/**
 * Walks the backing chain of `top` (and each layer's data file) the way
 * qemu would open it, refusing what `policy` does not allow, files qemu
 * would hang on, and chains that loop (qemu would recurse until the launch
 * timed out). Only each layer's own header is read: nothing is opened
 * before it has been checked.
 */
async function checkChain(name: string, abs: string, top: QemuImgInfo, policy: BackingPolicy): Promise<void> {
  const image = `disk image '${name}'`;
  const home = await realpath(dirname(abs));
  const chain = [await realpath(abs)];
  let layer = abs;
  for (let info = top; ; ) {
    const data = info['format-specific']?.data?.['data-file'];
    if (data !== undefined) {
      const file = resolve(dirname(layer), data);
      const which = `the external data file '${data}' of ${image}`;
      if (policy === 'none') throw new UsageError(`${image} keeps its data in an external file ('${data}'), which a commit would write: recipes refuse such images (give --allow-backing to accept it)`);
      await checkImageFile(file, which);
      if (policy === 'own-directory' && dirname(await realpath(file)) !== home) {
        throw new UsageError(`${image} keeps its data in an external file outside its directory ('${data}'), which a commit would write: refused (give --allow-backing to accept it)`);
      }
    }
    const named = info['backing-filename'];
    if (named === undefined) return;
    const next = info['full-backing-filename'] ?? named;
    if (!isAbsolute(next)) {
      // A protocol or a json: specification, not a host file.
      if (policy === 'any') return;
      throw new UsageError(`${image} has a backing file that is not a local file ('${named}'): refused (${ALLOW})`);
    }
    const which = `the backing file '${named}' of ${image}`;
    await checkImageFile(next, which);
    const real = await realpath(next);
    if (chain.includes(real)) {
      throw new UsageError(`${image} has a backing chain that loops: ${[...chain, real].map((f) => `'${f}'`).join(' → ')}`);
    }
    if (policy === 'none') throw new UsageError(`${image} has a backing file ('${named}'): recipes open images without one (${ALLOW})`);
    if (policy === 'own-directory' && dirname(real) !== home) {
      throw new UsageError(`${image} has a backing file outside its directory ('${named}'), which the guest would read: refused (${ALLOW})`);
    }
    chain.push(real);
    info = await qemuImgInfo(next, info['backing-filename-format'], which);
    layer = next;
  }
}

/** The image's format and size, once it has passed the checks above under `policy`. */
export async function probeImage(path: string, format?: string, policy: BackingPolicy = 'own-directory'): Promise<ImageInfo> {
  const abs = resolve(path);
  const what = `disk image '${path}'`;
  await checkImageFile(abs, what);
  const info = await qemuImgInfo(abs, format, what);
  await checkChain(path, abs, info, policy);
  return { format: info.format, virtualSize: info['virtual-size'] };
}

export async function createOverlay(base: string, baseFormat: string, overlay: string): Promise<void> {
  try {
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', resolve(base), '-F', baseFormat, resolve(overlay)]);
  } catch (e) {
    throw new UsageError(`cannot create an overlay over '${base}': ${qemuImgFailure(e)}`);
  }
}

/**
 * A blank image of `sizeBytes` bytes: sparse, or with every block allocated
 * (`preallocate`: guestfish's alloc).
 */
export async function createDisk(path: string, format: string, sizeBytes: number | bigint): Promise<void> {
  try {
    await runTool('qemu-img', ['create', '-q', '-f', format, resolve(path), String(sizeBytes)]);
  } catch (e) {
    throw new UsageError(`cannot create disk '${path}': ${qemuImgFailure(e)}`);
  }
}
