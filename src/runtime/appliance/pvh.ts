// Direct (PVH) kernel boot. qemu can enter an uncompressed ELF kernel at its
// PVH entry point, skipping SeaBIOS's loader and the in-guest xz decompressor,
// which under TCG take ~4 s of a ~15 s launch. Debian's kernel is an
// xz-compressed bzImage built with CONFIG_PVH, so the ELF is extracted once,
// when the appliance is built.

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** True if `elf` is a 64-bit ELF with a Xen PHYS32_ENTRY note (the PVH entry). */
export function hasPvhEntry(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== PT_NOTE) continue;
    let off = Number(elf.readBigUInt64LE(ph + 8));
    const end = off + Number(elf.readBigUInt64LE(ph + 32));
    while (off + 12 <= end) {
      const namesz = elf.readUInt32LE(off);
      const descsz = elf.readUInt32LE(off + 4);
      const type = elf.readUInt32LE(off + 8);
      const name = elf.subarray(off + 12, off + 12 + namesz).toString('latin1');
      if (name === 'Xen\0' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      off += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

/**
 * Writes the ELF kernel inside `bzImage` to `out` and returns true, or returns
 * false (leaving nothing behind) when it is not xz-compressed, xz is missing,
 * or the kernel has no PVH entry; the caller then boots the bzImage as before.
 */
export async function extractPvhKernel(bzImage: string, out: string): Promise<boolean> {
  const image = await readFile(bzImage);
  const start = image.indexOf(XZ_MAGIC);
  if (start < 0) return false;
  const tmp = `${out}.tmp`;
  try {
    const xz = spawn('xz', ['-dc', '--single-stream'], { stdio: ['pipe', 'pipe', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => {
      xz.on('error', () => resolve(null));
      xz.on('close', resolve);
    });
    xz.stdin.on('error', () => undefined); // xz stops reading at the stream's end
    xz.stdin.end(image.subarray(start));
    await pipeline(xz.stdout, createWriteStream(tmp));
    if ((await exited) !== 0 || !hasPvhEntry(await readFile(tmp))) {
      await rm(tmp, { force: true });
      return false;
    }
    await rename(tmp, out);
    return true;
  } catch {
    await rm(tmp, { force: true });
    return false;
  }
}
