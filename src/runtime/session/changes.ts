// What a session changed, file by file: each read-write image's filesystems
// are compared with the image as it was (plugged in again, read-only), inside
// the appliance. This is what --dry-run and `run --watch` print. One find per
// side lists every entry with its metadata; only files whose size, inode,
// mtime and ctime all match are taken as unchanged without reading them, and
// of the rest only same-size files are checksummed. A change of type, mode,
// owner or symlink target counts as modified too.
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

/** One entry's metadata, as find printed it; the checksum is filled in only when needed. */
interface Entry {
  /** Type (f, d, l, …), mode, owner, group: a change here is a change. */
  kind: string;
  /** Size, inode, mtime, ctime: when all equal, the contents are too (ctime cannot be set back). */
  stamp: string;
  size: string;
  link: string;
}

type Inventory = Map<string, Entry>;

/**
 * Every entry under `dir` (a mountpoint below the appliance's /sysroot) with
 * its metadata, in two calls: find writes the listing beside the mountpoint,
 * download streams it (no 4 MiB reply limit).
 */
async function inventory(s: Session, dir: string, n: number): Promise<Inventory> {
  const listing = `/guestsh-changes-list${n}`;
  // Fields: "type mode uid gid" NUL "size inode mtime ctime" NUL path NUL link-target NUL.
  await s.call('debug', ['sh', [`find /sysroot${dir} -xdev -mindepth 1 -printf '%y %m %U %G\\0%s %i %T@ %C@\\0/%P\\0%l\\0' > /sysroot${listing}`]]);
  const fields = (await callToBuffer(s, 'download', [listing, '-'])).toString('utf8').split('\0');
  await s.call('debug', ['sh', [`rm -f /sysroot${listing}`]]);
  const inv: Inventory = new Map();
  for (let i = 0; i + 3 < fields.length; i += 4) {
    const [kind, stamp, path, link] = [fields[i]!, fields[i + 1]!, fields[i + 2]!, fields[i + 3]!];
    inv.set(path, { kind, stamp, size: stamp.split(' ')[0]!, link });
  }
  return inv;
}

/** Whether an entry present on both sides changed: type, mode, owner, link target or contents. */
async function differs(s: Session, p: string, now: Entry, before: Entry, newDir: string, oldDir: string, mountOld: () => Promise<void>): Promise<boolean> {
  if (now.kind !== before.kind || now.link !== before.link) return true;
  if (now.stamp === before.stamp || !now.kind.startsWith('f ')) return false;
  if (now.size !== before.size) return true;
  // Same size, touched since: only the checksums can tell.
  await mountOld();
  const sum = (dir: string): Promise<unknown> => s.call('checksum', ['sha256', `${dir}${p}`]);
  return (await sum(newDir)) !== (await sum(oldDir));
}

// The untouched images cannot change while a session holds them (they are
// locked for its transaction), so their listings are taken once per session:
// a watch loop pays for the live side only. Keyed by image path and the
// filesystem's place on it; null when the image has no such filesystem.
const baseListings = new WeakMap<Session, Map<string, { type: string; inventory: Inventory } | null>>();

/** The untouched copy of one image, plugged in only when something needs it. */
class BaseCopy {
  private device: string | null = null;
  constructor(
    private readonly s: Session,
    private readonly path: string,
    private readonly format: string | undefined,
  ) {}
  async partition(suffix: string): Promise<string> {
    this.device ??= await this.s.attachReadOnly(this.path, this.format);
    return this.device + suffix;
  }
  async detach(): Promise<void> {
    if (this.device) await this.s.detachReadOnly(this.device);
    this.device = null;
  }
}

export async function changesAgainstBase(s: Session): Promise<FileChange[]> {
  const mounted = Object.entries((await s.call('mountpoints')) as Record<string, string>);
  await s.call('umount_all');
  const devices = (await s.call('list_devices')) as string[];
  // Not list_filesystems: it probes every device (LVM, md, …) and costs seconds.
  const partitions = (await s.call('list_partitions')) as string[];
  let cache = baseListings.get(s);
  if (!cache) baseListings.set(s, (cache = new Map()));
  const changes: FileChange[] = [];
  let n = 0;
  for (const [i, drive] of s.drives.entries()) {
    if (!drive.tx) continue;
    const live = devices[i]!;
    const base = new BaseCopy(s, drive.path, drive.format);
    try {
      const own = partitions.filter((p) => p.startsWith(live) && /^\d+$/.test(p.slice(live.length)));
      for (const fs of own.length ? own : [live]) {
        const type = (await s.call('vfs_type', [fs]).catch(() => '')) as string;
        if (!type || SKIPPED_TYPES.has(type)) continue;
        const suffix = fs.slice(live.length);
        n++;
        const newDir = `/guestsh-changes-new${n}`;
        const oldDir = `/guestsh-changes-old${n}`;
        await s.call('mkmountpoint', [newDir]);
        await s.call('mkmountpoint', [oldDir]);
        await s.call('mount_ro', [fs, newDir]);
        const now = await inventory(s, newDir, n);
        const key = `${drive.path}\0${suffix}`;
        if (!cache.has(key)) {
          const baseFs = await base.partition(suffix);
          const baseType = (await s.call('vfs_type', [baseFs]).catch(() => '')) as string;
          let listing = null;
          if (baseType && !SKIPPED_TYPES.has(baseType)) {
            await s.call('mount_ro', [baseFs, oldDir]);
            listing = { type: baseType, inventory: await inventory(s, oldDir, n) };
            await s.call('umount', [oldDir]);
          }
          cache.set(key, listing);
        }
        const before = cache.get(key);
        // A filesystem the run created has no counterpart: everything in it is new.
        if (!before || before.type !== type) {
          for (const p of now.keys()) changes.push({ filesystem: fs, path: p, change: 'added' });
        } else {
          let oldMounted = false;
          const mountOld = async (): Promise<void> => {
            if (oldMounted) return;
            await s.call('mount_ro', [await base.partition(suffix), oldDir]);
            oldMounted = true;
          };
          for (const [p, entry] of now) {
            const old = before.inventory.get(p);
            if (!old) changes.push({ filesystem: fs, path: p, change: 'added' });
            else if (await differs(s, p, entry, old, newDir, oldDir, mountOld)) changes.push({ filesystem: fs, path: p, change: 'modified' });
          }
          for (const p of before.inventory.keys()) if (!now.has(p)) changes.push({ filesystem: fs, path: p, change: 'removed' });
          if (oldMounted) await s.call('umount', [oldDir]);
        }
        await s.call('umount', [newDir]);
        await s.call('rmmountpoint', [newDir]);
        await s.call('rmmountpoint', [oldDir]);
      }
    } finally {
      await base.detach();
    }
  }
  mounted.sort(([, a], [, b]) => a.length - b.length);
  for (const [device, mountpoint] of mounted) await s.call('mount', [device, mountpoint]);
  return changes.sort((a, b) => a.filesystem.localeCompare(b.filesystem) || a.path.localeCompare(b.path));
}
