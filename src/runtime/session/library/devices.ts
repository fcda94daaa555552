// Optional feature groups, device naming, mountable parsing, and the calls
// whose daemon half writes XDR records or length-prefixed fields into a file
// that the library then decodes (filesystem_walk, find_inode, yara_scan,
// journal_get).

import type { InternalMountable, TSKDirent, XAttr, YaraDetection } from '../../../spec/api.js';
import { spec } from '../../../spec/index.js';
import type { ActionSpec } from '../../../spec/types.js';
import { GuestfsError, UsageError } from '../../errors.js';
import { type LibraryTable, type SessionHost, SessionSlot } from '../host.js';
import { collectFileOut, decodeStructStream } from './util.js';

// guestfsd's internal_feature_available: 0 available, 1 not available, 2 unknown group.
// The appliance does not change under a session, so each group is asked once.
const features = new SessionSlot(() => new Map<string, number>());

async function featureState(s: SessionHost, group: string): Promise<number> {
  const cache = s.slot(features);
  let r = cache.get(group);
  if (r === undefined) {
    r = await s.internal.internalFeatureAvailable(group);
    cache.set(group, r);
  }
  return r;
}

/**
 * Refuses an action whose optional feature group the running appliance lacks,
 * naming the group. Call before sending any daemon action; a no-op for
 * actions without a group and before launch (the daemon call then fails with
 * its own state error).
 */
export async function checkOptionalGroup(s: SessionHost, action: ActionSpec): Promise<void> {
  if (!action.optional || s.state !== 'ready') return;
  if ((await featureState(s, action.optional)) !== 0) {
    throw new UsageError(
      `${action.name}: this appliance lacks the optional feature group "${action.optional}" (see available_all_groups and feature_available)`,
    );
  }
}

async function featuresAvailable(s: SessionHost, action: string, groups: readonly string[], strict: boolean): Promise<boolean> {
  for (const g of groups) {
    const r = await featureState(s, g);
    if (r === 2) throw new UsageError(`${action}: ${g}: unknown group`);
    if (r === 1) {
      if (strict) throw new UsageError(`${action}: ${g}: group not available`);
      return false;
    }
  }
  return true;
}

/** "sda" → 0, "sdz" → 25, "sdaa" → 26, as in Linux disk naming; -1 when malformed. */
export function driveIndex(letters: string): number {
  if (!/^[a-z]+$/.test(letters)) return -1;
  let r = 0;
  for (const ch of letters) r = r * 26 + (ch.charCodeAt(0) - 96);
  return r - 1;
}

// "/dev/sdb", "/dev/vdb", "/dev/hdb", "/dev/xvdb" … : the letters after the "d".
function diskLetters(device: string): string | null {
  if (!device.startsWith('/dev/')) return null;
  const rest = device.slice(5);
  if (rest.includes('/') || rest.startsWith('m')) return null;
  const d = rest.indexOf('d');
  if (d < 1 || d > 2) return null;
  return rest.slice(d + 1);
}

async function canonicalDeviceName(s: SessionHost, device: string): Promise<string> {
  const letters = diskLetters(device);
  if (letters !== null) return `/dev/sd${letters}`;
  if (device.startsWith('/dev/mapper/') || device.startsWith('/dev/dm-')) {
    try {
      return await s.g.lvmCanonicalLvName(device);
    } catch (e) {
      if (e instanceof GuestfsError) return device;
      throw e;
    }
  }
  return device;
}

function deviceIndex(device: string): number {
  const letters = diskLetters(device);
  // Partition names ("/dev/sda1") are not disks.
  const r = letters === null ? -1 : driveIndex(letters);
  if (r < 0) throw new UsageError(`device_index: ${device}: device not found`);
  return r;
}

function parseMountable(s: SessionHost, m: string): Promise<InternalMountable> {
  return s.internal.internalParseMountable(m);
}

/** journal_get's file: records of (u64 big-endian length, "FIELD=value"). */
export function decodeJournalFields(buf: Buffer): XAttr[] {
  const out: XAttr[] = [];
  let i = 0;
  while (i < buf.length) {
    if (i + 8 > buf.length) throw new UsageError(`journal_get: invalid data from the daemon: truncated at ${i}`);
    const len = Number(buf.readBigUInt64BE(i));
    i += 8;
    if (i + len > buf.length) throw new UsageError(`journal_get: invalid data from the daemon: length ${len} too large at ${i}`);
    const field = buf.subarray(i, i + len);
    const eq = field.indexOf(0x3d);
    if (eq < 0) throw new UsageError(`journal_get: invalid data from the daemon: no '=' in field at ${i}`);
    out.push({ attrname: field.subarray(0, eq).toString('utf8'), attrval: Buffer.from(field.subarray(eq + 1)) });
    i += len;
  }
  return out;
}

export const deviceActions: LibraryTable = {
  available: async (s, groups) => {
    await featuresAvailable(s, 'available', groups, true);
  },
  feature_available: (s, groups) => featuresAvailable(s, 'feature_available', groups, false),
  canonical_device_name: (s, d) => canonicalDeviceName(s, d),
  device_index: (_s, d) => deviceIndex(d),
  mountable_device: async (s, m) => (await parseMountable(s, m)).im_device,
  mountable_subvolume: async (s, m) => {
    const r = await parseMountable(s, m);
    if (r.im_volume === '') throw new UsageError('mountable_subvolume: not a btrfs subvolume identifier');
    return r.im_volume;
  },
  filesystem_walk: async (s, dev) =>
    decodeStructStream<TSKDirent>(await collectFileOut((t) => s.internal.internalFilesystemWalk(dev, '-', t)), 'tsk_dirent'),
  find_inode: async (s, dev, inode) =>
    decodeStructStream<TSKDirent>(await collectFileOut((t) => s.internal.internalFindInode(dev, inode, '-', t)), 'tsk_dirent'),
  yara_scan: async (s, path) =>
    decodeStructStream<YaraDetection>(await collectFileOut((t) => s.internal.internalYaraScan(path, '-', t)), 'yara_detection'),
  journal_get: async (s) => decodeJournalFields(await collectFileOut((t) => s.internal.internalJournalGet('-', t))),
};

/** Optional groups of library-side actions (their daemon halves carry the same group). */
export const libraryGroups: Record<string, string> = Object.fromEntries(
  spec.actions.filter((a) => a.procNr === null && a.optional).map((a) => [a.name, a.optional!]),
);
