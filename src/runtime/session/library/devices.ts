// Optional feature groups, device naming, mountable parsing, and the calls
// whose daemon half writes XDR records or length-prefixed fields into a file
// that the library then decodes (filesystem_walk, find_inode, yara_scan,
// journal_get).

import { spec } from '../../../spec/index.js';
import type { ActionSpec } from '../../../spec/types.js';
import { GuestfsError, UsageError } from '../../errors.js';
import type { StructValue } from '../../../spec/values.js';
import type { Session } from '../session.js';
import { callToBuffer, decodeStructStream, type LibraryAction } from './util.js';

// guestfsd's internal_feature_available: 0 available, 1 not available, 2 unknown group.
const features = new WeakMap<Session, Map<string, number>>();

async function featureState(s: Session, group: string): Promise<number> {
  let cache = features.get(s);
  if (!cache) features.set(s, (cache = new Map()));
  let r = cache.get(group);
  if (r === undefined) {
    r = (await s.call('internal_feature_available', [group])) as number;
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
export async function checkOptionalGroup(s: Session, action: ActionSpec): Promise<void> {
  if (!action.optional || s.state !== 'ready') return;
  if ((await featureState(s, action.optional)) !== 0) {
    throw new UsageError(
      `${action.name}: this appliance lacks the optional feature group "${action.optional}" (see available_all_groups and feature_available)`,
    );
  }
}

async function featuresAvailable(s: Session, action: string, groups: readonly string[], strict: boolean): Promise<boolean> {
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

async function canonicalDeviceName(s: Session, device: string): Promise<string> {
  const letters = diskLetters(device);
  if (letters !== null) return `/dev/sd${letters}`;
  if (device.startsWith('/dev/mapper/') || device.startsWith('/dev/dm-')) {
    try {
      return (await s.call('lvm_canonical_lv_name', [device])) as string;
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

async function parseMountable(s: Session, m: string): Promise<StructValue> {
  return (await s.call('internal_parse_mountable', [m])) as StructValue;
}

/** journal_get's file: records of (u64 big-endian length, "FIELD=value"). */
export function decodeJournalFields(buf: Buffer): StructValue[] {
  const out: StructValue[] = [];
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

export const deviceActions: Record<string, LibraryAction> = {
  available: async (s, [groups]) => {
    await featuresAvailable(s, 'available', groups as string[], true);
  },
  feature_available: (s, [groups]) => featuresAvailable(s, 'feature_available', groups as string[], false),
  canonical_device_name: (s, [d]) => canonicalDeviceName(s, d as string),
  device_index: (_s, [d]) => deviceIndex(d as string),
  mountable_device: async (s, [m]) => (await parseMountable(s, m as string)).im_device as string,
  mountable_subvolume: async (s, [m]) => {
    const r = await parseMountable(s, m as string);
    if (r.im_volume === '') throw new UsageError('mountable_subvolume: not a btrfs subvolume identifier');
    return r.im_volume as string;
  },
  filesystem_walk: async (s, [dev]) => decodeStructStream(await callToBuffer(s, 'internal_filesystem_walk', [dev as string, '-']), 'tsk_dirent'),
  find_inode: async (s, [dev, inode]) =>
    decodeStructStream(await callToBuffer(s, 'internal_find_inode', [dev as string, inode as bigint, '-']), 'tsk_dirent'),
  yara_scan: async (s, [path]) => decodeStructStream(await callToBuffer(s, 'internal_yara_scan', [path as string, '-']), 'yara_detection'),
  journal_get: async (s) => decodeJournalFields(await callToBuffer(s, 'internal_journal_get', ['-'])),
};

/** Optional groups of library-side actions (their daemon halves carry the same group). */
export const libraryGroups: Record<string, string> = Object.fromEntries(
  spec.actions.filter((a) => a.procNr === null && a.optional).map((a) => [a.name, a.optional!]),
);
