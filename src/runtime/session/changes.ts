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

import { type SessionHost, SessionSlot } from './host.js';
import { collectFileOut } from './library/util.js';
import { currentMounts, remount } from './mounts.js';

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
async function inventory(s: SessionHost, dir: string, n: number): Promise<Inventory> {
  const listing = `/guestsh-changes-list${n}`;
  // Fields: "type mode uid gid" NUL "size inode mtime ctime" NUL path NUL link-target NUL.
  await s.internal.debug('sh', [`find /sysroot${dir} -xdev -mindepth 1 -printf '%y %m %U %G\\0%s %i %T@ %C@\\0/%P\\0%l\\0' > /sysroot${listing}`]);
  const fields = (await collectFileOut((t) => s.g.download(listing, '-', t))).toString('utf8').split('\0');
  await s.internal.debug('sh', [`rm -f /sysroot${listing}`]);
  const inv: Inventory = new Map();
  for (let i = 0; i + 3 < fields.length; i += 4) {
    const [kind, stamp, path, link] = [fields[i]!, fields[i + 1]!, fields[i + 2]!, fields[i + 3]!];
    inv.set(path, { kind, stamp, size: stamp.split(' ')[0]!, link });
  }
  return inv;
}

/** Whether an entry present on both sides changed: type, mode, owner, link target or contents. */
async function differs(s: SessionHost, p: string, now: Entry, before: Entry, newDir: string, oldDir: string, mountOld: () => Promise<void>): Promise<boolean> {
  if (now.kind !== before.kind || now.link !== before.link) return true;
  if (now.stamp === before.stamp || !now.kind.startsWith('f ')) return false;
  if (now.size !== before.size) return true;
  // Same size, touched since: only the checksums can tell.
  await mountOld();
  const sum = (dir: string): Promise<string> => s.g.checksum('sha256', `${dir}${p}`);
  return (await sum(newDir)) !== (await sum(oldDir));
}

// The untouched images cannot change while a session holds them (they are
// locked for its transaction), so their listings are taken once per session:
// a watch loop pays for the live side only. Keyed by image path and the
// filesystem's place on it; null when the image has no such filesystem.
const baseListings = new SessionSlot(() => new Map<string, { type: string; inventory: Inventory } | null>());

/** The untouched copy of one image, plugged in only when something needs it. */
class BaseCopy {
  private device: string | null = null;
  constructor(
    private readonly s: SessionHost,
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

export async function changesAgainstBase(s: SessionHost): Promise<FileChange[]> {
  const { g } = s;
  const mounted = await currentMounts(g);
  await g.umountAll();
  const devices = await g.listDevices();
  // Not list_filesystems: it probes every device (LVM, md, …) and costs seconds.
  const partitions = await g.listPartitions();
  const cache = s.slot(baseListings);
  const changes: FileChange[] = [];
  let n = 0;
  for (const [i, drive] of s.drives.entries()) {
    if (!drive.tx) continue;
    const live = devices[i]!;
    const base = new BaseCopy(s, drive.path, drive.format);
    try {
      const own = partitions.filter((p) => p.startsWith(live) && /^\d+$/.test(p.slice(live.length)));
      for (const fs of own.length ? own : [live]) {
        const type = await g.vfsType(fs).catch(() => '');
        if (!type || SKIPPED_TYPES.has(type)) continue;
        const suffix = fs.slice(live.length);
        n++;
        const newDir = `/guestsh-changes-new${n}`;
        const oldDir = `/guestsh-changes-old${n}`;
        await g.mkmountpoint(newDir);
        await g.mkmountpoint(oldDir);
        await g.mountRo(fs, newDir);
        const now = await inventory(s, newDir, n);
        const key = `${drive.path}\0${suffix}`;
        if (!cache.has(key)) {
          const baseFs = await base.partition(suffix);
          const baseType = await g.vfsType(baseFs).catch(() => '');
          let listing = null;
          if (baseType && !SKIPPED_TYPES.has(baseType)) {
            await g.mountRo(baseFs, oldDir);
            listing = { type: baseType, inventory: await inventory(s, oldDir, n) };
            await g.umount(oldDir);
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
            await g.mountRo(await base.partition(suffix), oldDir);
            oldMounted = true;
          };
          for (const [p, entry] of now) {
            const old = before.inventory.get(p);
            if (!old) changes.push({ filesystem: fs, path: p, change: 'added' });
            else if (await differs(s, p, entry, old, newDir, oldDir, mountOld)) changes.push({ filesystem: fs, path: p, change: 'modified' });
          }
          for (const p of before.inventory.keys()) if (!now.has(p)) changes.push({ filesystem: fs, path: p, change: 'removed' });
          if (oldMounted) await g.umount(oldDir);
        }
        await g.umount(newDir);
        await g.rmmountpoint(newDir);
        await g.rmmountpoint(oldDir);
      }
    } finally {
      await base.detach();
    }
  }
  await remount(g, mounted);
  return changes.sort((a, b) => a.filesystem.localeCompare(b.filesystem) || a.path.localeCompare(b.path));
}
