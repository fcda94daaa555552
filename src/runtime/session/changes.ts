// What a session changed, file by file: each read-write image's filesystems
// are compared with the image as it was (plugged in again, read-only), inside
// the appliance. This is what --dry-run prints before the changes are discarded.
//
// Filesystems are matched by partition: /dev/sda2 against the same partition
// of the untouched copy. Filesystems inside LVM are not compared: the copy's
// volume group would carry the same name and UUIDs as the live one.

import { callToBuffer } from './library/util.js';
import type { Session } from './session.js';

export type ChangeKind = 'added' | 'removed' | 'modified';

export interface FileChange {
  /** The filesystem, as the session names it (e.g. /dev/sda1). */
  filesystem: string;
  /** Path inside that filesystem, starting with '/'. */
  path: string;
  change: ChangeKind;
}

const SKIPPED_TYPES = new Set(['unknown', 'swap', 'crypto_LUKS', 'LVM2_member']);

async function fileOutLines(s: Session, action: string, args: string[], sep: string): Promise<string[]> {
  return (await callToBuffer(s, action, args)).toString('utf8').split(sep).filter(Boolean);
}

const normalise = (p: string): string => `/${p.replace(/^\.?\/+/, '')}`;

/** Every entry (files, directories, links) under `dir`, and a checksum per regular file. */
async function inventory(s: Session, dir: string): Promise<{ entries: Set<string>; sums: Map<string, string> }> {
  const entries = new Set((await fileOutLines(s, 'find0', [dir, '-'], '\0')).map(normalise));
  const sums = new Map<string, string>();
  for (const line of await fileOutLines(s, 'checksums_out', ['sha256', dir, '-'], '\n')) {
    const m = /^([0-9a-f]{64}) {2}(.*)$/.exec(line);
    if (m) sums.set(normalise(m[2]!), m[1]!);
  }
  return { entries, sums };
}

export async function changesAgainstBase(s: Session): Promise<FileChange[]> {
  const mounted = Object.entries((await s.call('mountpoints')) as Record<string, string>);
  await s.call('umount_all');
  const devices = (await s.call('list_devices')) as string[];
  const filesystems = Object.entries((await s.call('list_filesystems')) as Record<string, string>);
  const changes: FileChange[] = [];
  let n = 0;
  for (const [i, drive] of s.drives.entries()) {
    if (!drive.tx) continue;
    const live = devices[i]!;
    const base = await s.attachReadOnly(drive.path, drive.format);
    for (const [fs, type] of filesystems) {
      if (!(fs === live || fs.startsWith(live)) || SKIPPED_TYPES.has(type)) continue;
      const newDir = `/guestsh-changes-new${n}`;
      const oldDir = `/guestsh-changes-old${n++}`;
      await s.call('mkmountpoint', [newDir]);
      await s.call('mkmountpoint', [oldDir]);
      await s.call('mount_ro', [fs, newDir]);
      const now = await inventory(s, newDir);
      let before = { entries: new Set<string>(), sums: new Map<string, string>() };
      // A filesystem the run created has no counterpart: everything in it is new.
      const baseFs = base + fs.slice(live.length);
      if ((await s.call('vfs_type', [baseFs]).catch(() => '')) === type) {
        await s.call('mount_ro', [baseFs, oldDir]);
        before = await inventory(s, oldDir);
        await s.call('umount', [oldDir]);
      }
      await s.call('umount', [newDir]);
      await s.call('rmmountpoint', [newDir]);
      await s.call('rmmountpoint', [oldDir]);
      for (const p of now.entries) {
        if (!before.entries.has(p)) changes.push({ filesystem: fs, path: p, change: 'added' });
        else if (now.sums.get(p) !== before.sums.get(p)) changes.push({ filesystem: fs, path: p, change: 'modified' });
      }
      for (const p of before.entries) if (!now.entries.has(p)) changes.push({ filesystem: fs, path: p, change: 'removed' });
    }
  }
  mounted.sort(([, a], [, b]) => a.length - b.length);
  for (const [device, mountpoint] of mounted) await s.call('mount', [device, mountpoint]);
  return changes.sort((a, b) => a.filesystem.localeCompare(b.filesystem) || a.path.localeCompare(b.path));
}
