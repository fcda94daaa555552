// Opening a guest's disks the way the command line asks: add the drives,
// launch, then -i (open LUKS devices with keys the caller supplies, inspect,
// mount the operating system's filesystems parents first) and -m mounts.
// The shell, `guestsh run` and watch mode all open images through here, so
// the options mean the same everywhere.

import type { Session } from '../session/session.js';
import { diskName } from '../session/hotplug.js';
import { parentsFirst } from '../session/mounts.js';
import { UsageError } from '../errors.js';

export interface OpenDrive {
  path: string;
  format?: string | undefined;
  /** Default: OpenOptions.readonly. */
  readonly?: boolean | undefined;
  /** Makes the image file before it is added (-N disks). */
  create?: (() => Promise<void>) | undefined;
  /** Partitions and formats it once the appliance runs, before the -m mounts (-N disks); gets its device name. */
  prepare?: ((s: Session, device: string) => Promise<void>) | undefined;
}

/** -m DEVICE[:MOUNTPOINT[:OPTIONS[:FSTYPE]]] */
export interface MountArg {
  device: string;
  /** Default '/'. */
  mountpoint?: string | undefined;
  /** Mount options; default 'ro' when the drives are read-only, else none. */
  options?: string | undefined;
  fstype?: string | undefined;
}

export interface OpenOptions {
  drives: readonly OpenDrive[];
  /** --ro: drives are read-only unless they say otherwise, -i mounts read-only, -m defaults to 'ro'. */
  readonly?: boolean | undefined;
  /** -i */
  inspect?: boolean | undefined;
  /** -m, in order. */
  mounts?: readonly MountArg[] | undefined;
  /** Launch even when nothing above needs the appliance yet. */
  launch?: boolean | undefined;
  /** The key for an encrypted device; without it, an encrypted device stops -i with an error that says how to give one. */
  /** The keys to try for an encrypted device (its name, its LUKS UUID when it has one), in order. */
  keys?: ((device: string, uuid: string | null) => Promise<readonly string[]>) | undefined;
  /** Problems that do not stop the opening (a filesystem -i could not mount). */
  warn?: ((line: string) => void) | undefined;
}

export interface Opened {
  /** The operating system -i found (its root device), else null. */
  root: string | null;
}

/** -m's words: DEVICE[:MOUNTPOINT[:OPTIONS[:FSTYPE]]]; empty fields take their defaults. */
export function parseMount(spec: string): MountArg {
  const [device, mountpoint, options, fstype] = spec.split(':');
  if (!device) throw new UsageError(`-m '${spec}': no device given`);
  return { device, mountpoint: mountpoint || '/', options: options || undefined, fstype: fstype || undefined };
}

export class OpenError extends Error {
  override name = 'OpenError';
}

/**
 * Adds the drives and launches (when anything needs the appliance), then
 * -i, the drives' own preparation, and the -m mounts, in that order. A
 * session that is past its config state is taken as opened already: only
 * -i and -m are done.
 */
export async function openImages(s: Session, o: OpenOptions): Promise<Opened> {
  const needsAppliance = o.launch || o.inspect || (o.mounts?.length ?? 0) > 0 || o.drives.some((d) => d.prepare);
  if (s.state === 'config') {
    for (const d of o.drives) {
      await d.create?.();
      // Through the dispatcher, as guestfish's -a calls add_drive: -x traces it
      // with the optional arguments that were given, and only those.
      const readonly = d.readonly ?? o.readonly ?? false;
      await s.call('add_drive', [d.path], { ...(readonly ? { readonly } : {}), ...(d.format !== undefined ? { format: d.format } : {}) });
    }
    if (!needsAppliance) return { root: null };
    await s.launch();
  }
  const readonly = Boolean(o.readonly) || (s.drives.length > 0 && s.drives.every((d) => d.readonly));
  const root = o.inspect ? await inspectAndMount(s, readonly, o) : null;
  for (const [i, d] of o.drives.entries()) await d.prepare?.(s, `/dev/${diskName(i)}`);
  for (const m of o.mounts ?? []) await mount(s, m, readonly);
  return { root };
}

/** Opens every LUKS device (before inspection, which cannot see inside them), as guestfish -i does. */
async function openEncrypted(s: Session, keys: OpenOptions['keys']): Promise<void> {
  const g = s.g;
  let opened = false;
  for (const dev of [...(await g.listDevices()), ...(await g.listPartitions())]) {
    const type = await g.vfsType(dev).catch(() => '');
    if (type !== 'crypto_LUKS') continue;
    if (!keys) throw new OpenError(`-i: ${dev} is encrypted: give its key with --keys-from-stdin`);
    const uuid = await g.luksUuid(dev).catch(() => null);
    const mapname = uuid ? `luks-${uuid}` : `crypt${dev.replace(/^\/dev\//, '').replace(/[^a-zA-Z0-9]/g, '')}`;
    // As guestfish: each key given for the device in turn, until one opens it.
    const candidates = await keys(dev, uuid);
    for (const [i, key] of candidates.entries()) {
      try {
        await g.cryptsetupOpen(dev, key, mapname, { readonly: false });
        break;
      } catch (e) {
        if (i === candidates.length - 1) throw e;
      }
    }
    opened = true;
  }
  // Volume groups inside the opened devices appear only after a rescan.
  if (opened) await g.lvmScan(true).catch(() => g.vgActivateAll(true));
}

/** -i: the one operating system's filesystems, mounted parents first; a failing mount other than / is a warning. */
async function inspectAndMount(s: Session, readonly: boolean, o: OpenOptions): Promise<string> {
  await openEncrypted(s, o.keys);
  const roots = await s.g.inspectOs();
  if (roots.length === 0) {
    throw new OpenError('-i: no operating system was found on the disks; mount filesystems with -m instead (list-filesystems shows them)');
  }
  if (roots.length > 1) throw new OpenError('-i: more than one operating system was found (multi-boot); mount filesystems with -m instead');
  const root = roots[0]!;
  const byMountpoint = await s.g.inspectGetMountpoints(root);
  const mounts = parentsFirst(Object.entries(byMountpoint).map(([mountpoint, device]) => ({ mountpoint, device })));
  let failed = 0;
  for (const m of mounts) {
    try {
      await (readonly ? s.g.mountRo(m.device, m.mountpoint) : s.g.mount(m.device, m.mountpoint));
    } catch (e) {
      if (m.mountpoint === '/') throw e;
      failed++;
    }
  }
  if (failed) o.warn?.('some filesystems could not be mounted (ignored)');
  return root;
}

/** -m: mount_vfs with a filesystem type, else mount_options; a failure lists the filesystems there are. */
async function mount(s: Session, m: MountArg, readonly: boolean): Promise<void> {
  const options = m.options ?? (readonly ? 'ro' : '');
  const mountpoint = m.mountpoint || '/';
  try {
    if (m.fstype) await s.g.mountVfs(options, m.fstype, m.device, mountpoint);
    else await s.g.mountOptions(options, m.device, mountpoint);
  } catch (e) {
    const filesystems = await s.g.listFilesystems().then(
      (fs) => `; filesystems are: ${Object.entries(fs).map(([d, t]) => `${d} (${t})`).join(', ')}`,
      () => '',
    );
    throw new OpenError(`-m ${m.device}:${mountpoint}: ${e instanceof Error ? e.message : String(e)}${filesystems}`);
  }
}
