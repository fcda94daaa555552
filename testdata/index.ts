// Test guests for guestsh's tests: built on first use, then served from the
// cache (see README.md). Tests import from here; `build.ts` is the CLI.

import * as fs from 'node:fs';
import { ensureBootableImages, type BootableImages } from './bootable.js';
import { BuildError, defaultCacheDir, removeAbandonedTempDirs, run } from './build-support.js';
import { ensureDebianImages, type DebianImages, type DebianTruth } from './debian.js';
import { ensureLuksImages } from './luks.js';
import { ensureLvmImages } from './lvm.js';
import { ensureWindowsImages } from './windows.js';

export { BuildError, defaultCacheDir } from './build-support.js';
export type { BootableImages, BootableTruth } from './bootable.js';
export type { DebianImages, DebianTruth, GuestUser } from './debian.js';
export { LUKS_KEY, type LuksTruth } from './luks.js';
export type { RegistryHive, RegistryKey, RegistryValue, WindowsTruth } from './windows.js';
export type { GuestImages, LayeredDebianTruth, LvmTruth, TruthFilesystem, TruthPartition } from './lvm.js';

export const GUEST_NAMES = ['debian', 'lvm', 'luks', 'windows', 'bootable'] as const;
export type GuestName = (typeof GUEST_NAMES)[number];

export interface EnsureOptions {
  /** Defaults to $GUESTSH_TESTDATA_CACHE, else <repo>/.cache/testdata. */
  cacheDir?: string;
}

/** All files of a built guest (raw image, qcow2, truth JSON), building them if the cache lacks them. */
export async function ensureGuest(name: string, options: EnsureOptions = {}): Promise<DebianImages> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  fs.mkdirSync(cacheDir, { recursive: true });
  await removeAbandonedTempDirs(cacheDir);
  switch (name as GuestName) {
    case 'debian':
      return ensureDebianImages(cacheDir);
    case 'lvm':
      return ensureLvmImages(cacheDir);
    case 'luks':
      return ensureLuksImages(cacheDir);
    case 'windows':
      return ensureWindowsImages(cacheDir);
    case 'bootable':
      return ensureBootableImages(cacheDir);
    default:
      throw new BuildError(`unknown test guest "${name}": known guests are ${GUEST_NAMES.join(', ')}`);
  }
}

/** The `bootable` guest's images with its kernel and initramfs (for qemu's direct kernel boot). */
export async function ensureBootableGuest(options: EnsureOptions = {}): Promise<BootableImages> {
  return (await ensureGuest('bootable', options)) as BootableImages;
}

/** Path of a guest's raw disk image, building it if the cache lacks it. */
export async function ensureImage(name: string, options: EnsureOptions = {}): Promise<string> {
  return (await ensureGuest(name, options)).raw;
}

export function readTruth(images: DebianImages): DebianTruth {
  return JSON.parse(fs.readFileSync(images.truth, 'utf8')) as DebianTruth;
}

/** A new all-zero disk for tests that partition and format from scratch (raw is sparse). */
export async function blankDisk(path: string, sizeBytes: number, format: 'raw' | 'qcow2'): Promise<void> {
  await run('qemu-img', ['create', '-q', '-f', format, path, String(sizeBytes)]);
}
