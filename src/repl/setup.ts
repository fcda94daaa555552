// What happens between the options and the first command: drives (-a, -N),
// launch when -i/-m/-N ask for it, LUKS keys, inspection and mounts.

import { createInterface } from 'node:readline';
import { UsageError } from '../runtime/errors.js';
import type { Session } from '../runtime/session/session.js';
import { parseInteger } from '../commands/parse.js';
import type { DriveArg, MountArg, Options } from './options.js';
import { CommandFailed, createRawImage } from './shell.js';

interface PrepType {
  params: [string, string][];
  summary: string;
}

/** guestfish's -N types: parameter names with their defaults. */
export const PREPARED: Record<string, PrepType> = {
  disk: { params: [['size', '1G']], summary: 'a blank disk' },
  part: { params: [['size', '1G'], ['partition', 'mbr']], summary: 'a disk with one partition' },
  fs: { params: [['filesystem', 'ext2'], ['size', '1G'], ['partition', 'mbr']], summary: 'a disk with one partition holding an empty filesystem' },
  lv: { params: [['name', '/dev/VG/LV'], ['size', '1G'], ['partition', 'mbr']], summary: 'a disk with one partition as an LVM PV, a VG and an LV' },
  lvfs: {
    params: [['name', '/dev/VG/LV'], ['filesystem', 'ext2'], ['size', '1G'], ['partition', 'mbr']],
    summary: 'like lv, with a filesystem on the LV',
  },
  bootroot: {
    params: [['bootfs', 'ext2'], ['rootfs', 'ext2'], ['size', '1G'], ['bootsize', '128M'], ['partition', 'mbr']],
    summary: 'a boot and a root partition with filesystems',
  },
  bootrootlv: {
    params: [['name', '/dev/VG/LV'], ['bootfs', 'ext2'], ['rootfs', 'ext2'], ['size', '1G'], ['bootsize', '128M'], ['partition', 'mbr']],
    summary: 'like bootroot, with root on an LV',
  },
};

export function listPrepared(): string {
  let out = 'List of available prepared disk images (-N TYPE[:PARAM...]):\n\n';
  for (const [name, t] of Object.entries(PREPARED)) {
    out += `${name.padEnd(12)} ${t.summary}\n`;
    t.params.forEach(([p, d], i) => (out += `${''.padEnd(12)}   param ${i + 1}: ${p} (default ${d})\n`));
  }
  return out;
}

function prepParams(d: Extract<DriveArg, { kind: 'prepared' }>): Record<string, string> {
  const t = PREPARED[d.type];
  if (!t) throw new UsageError(`-N ${d.type}: unknown prepared disk type; use -N list to list them`);
  if (d.params.length > t.params.length) throw new UsageError(`-N ${d.type}: too many parameters (at most ${t.params.length})`);
  const out: Record<string, string> = {};
  t.params.forEach(([name, dflt], i) => (out[name] = d.params[i] || dflt));
  return out;
}

function vgLv(name: string): { vg: string; lv: string } {
  const n = name.startsWith('/dev/') ? name.slice(5) : name;
  const slash = n.indexOf('/');
  if (slash <= 0 || slash === n.length - 1) throw new UsageError(`-N: cannot parse '${name}' as /dev/VG/LV`);
  return { vg: n.slice(0, slash), lv: n.slice(slash + 1) };
}

/** Adds every -a and -N drive in command-line order, creating -N images first. */
export async function addDrives(session: Session, opts: Options): Promise<void> {
  for (const d of opts.drives) {
    if (d.kind === 'add') {
      await session.addDrive(d.path, { format: d.format, readonly: opts.readonly });
      continue;
    }
    const p = prepParams(d);
    if (p.name) vgLv(p.name);
    await createRawImage(d.path, parseInteger(p.size!, '-N size'), true);
    await session.addDrive(d.path, { format: 'raw' });
  }
}

async function call(session: Session, name: string, args: unknown[] = [], opt: Record<string, unknown> = {}): Promise<unknown> {
  return session.call(name, args as never, opt as never);
}

/** Partitions and formats the -N drives after launch (device /dev/sdX by position). */
export async function prepareDrives(session: Session, opts: Options): Promise<void> {
  for (const [index, d] of opts.drives.entries()) {
    if (d.kind !== 'prepared') continue;
    const dev = `/dev/sd${driveLetters(index)}`;
    const p = prepParams(d);
    const fail = (what: string, e: unknown): never => {
      throw new CommandFailed(`-N ${d.type} (${d.path}): ${what}: ${e instanceof Error ? e.message : String(e)}`);
    };
    const step = async (what: string, f: () => Promise<unknown>): Promise<void> => {
      try {
        await f();
      } catch (e) {
        fail(what, e);
      }
    };
    const lvOn = async (part: string, name: string): Promise<void> => {
      const { vg, lv } = vgLv(name);
      await step('pvcreate', () => call(session, 'pvcreate', [part]));
      await step('vgcreate', () => call(session, 'vgcreate', [vg, [part]]));
      await step('lvcreate', () => call(session, 'lvcreate_free', [lv, vg, 100]));
    };
    const bootRoot = async (): Promise<void> => {
      const sector = BigInt((await call(session, 'blockdev_getss', [dev])) as number);
      const bootsize = parseInteger(p.bootsize!, '-N bootsize');
      await step('part-init', () => call(session, 'part_init', [dev, p.partition]));
      const lastBoot = 64n + bootsize / sector - 1n;
      await step('part-add', () => call(session, 'part_add', [dev, 'primary', 64n, lastBoot]));
      await step('part-add', () => call(session, 'part_add', [dev, 'primary', lastBoot + 1n, -64n]));
    };
    switch (d.type) {
      case 'disk':
        break;
      case 'part':
        await step('failed to partition disk', () => call(session, 'part_disk', [dev, p.partition]));
        break;
      case 'fs':
        await step('failed to partition disk', () => call(session, 'part_disk', [dev, p.partition]));
        await step(`failed to create filesystem (${p.filesystem})`, () => call(session, 'mkfs', [p.filesystem, `${dev}1`]));
        break;
      case 'lv':
      case 'lvfs':
        await step('failed to partition disk', () => call(session, 'part_disk', [dev, p.partition]));
        await lvOn(`${dev}1`, p.name!);
        if (d.type === 'lvfs') await step(`failed to create filesystem (${p.filesystem})`, () => call(session, 'mkfs', [p.filesystem, p.name]));
        break;
      case 'bootroot':
        await bootRoot();
        await step('mkfs boot', () => call(session, 'mkfs', [p.bootfs, `${dev}1`]));
        await step('mkfs root', () => call(session, 'mkfs', [p.rootfs, `${dev}2`]));
        break;
      case 'bootrootlv':
        await bootRoot();
        await step('mkfs boot', () => call(session, 'mkfs', [p.bootfs, `${dev}1`]));
        await lvOn(`${dev}2`, p.name!);
        await step('mkfs root', () => call(session, 'mkfs', [p.rootfs, p.name]));
        break;
    }
  }
}

/** sda, sdb, ..., sdz, sdaa ... (libguestfs's drive naming). */
export function driveLetters(index: number): string {
  let s = '';
  let n = index;
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return s;
}

/** Reads passphrases: one line each from stdin (--keys-from-stdin), else from the terminal. */
export class KeyReader {
  private lines: string[] | null = null;
  constructor(private readonly opts: Options) {}

  async read(device: string): Promise<string> {
    if (this.opts.keysFromStdin) {
      if (this.lines === null) {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        this.lines = Buffer.concat(chunks).toString('utf8').split('\n');
      }
      const l = this.lines.shift();
      if (l === undefined) throw new CommandFailed(`no key for ${device} on stdin`);
      return l;
    }
    if (!process.stdin.isTTY) throw new CommandFailed(`${device} is encrypted: give its key with --keys-from-stdin`);
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const echo = this.opts.echoKeys;
    // Hide the typed characters unless --echo-keys.
    const out = rl as unknown as { _writeToOutput?: (s: string) => void };
    const prompt = `Enter key or passphrase ("${device}"): `;
    if (!echo) out._writeToOutput = (s: string) => void (s.startsWith(prompt) ? process.stderr.write(prompt) : undefined);
    try {
      return await new Promise<string>((resolve) => rl.question(prompt, resolve));
    } finally {
      rl.close();
      if (!echo) process.stderr.write('\n');
    }
  }
}

/** Opens every LUKS device (before inspection), like guestfish -i does. */
async function decrypt(session: Session, keys: KeyReader): Promise<void> {
  const parts = [...((await call(session, 'list_devices')) as string[]), ...((await call(session, 'list_partitions')) as string[])];
  let opened = false;
  for (const p of parts) {
    let type = '';
    try {
      type = (await call(session, 'vfs_type', [p])) as string;
    } catch {
      continue;
    }
    if (type !== 'crypto_LUKS') continue;
    let mapname: string;
    try {
      mapname = `luks-${(await call(session, 'luks_uuid', [p])) as string}`;
    } catch {
      mapname = `crypt${p.replace(/^\/dev\//, '').replace(/[^a-zA-Z0-9]/g, '')}`;
    }
    const key = await keys.read(p);
    await call(session, 'cryptsetup_open', [p, key, mapname], { readonly: false });
    opened = true;
  }
  if (opened) {
    await call(session, 'lvm_scan', [true]).catch(() => call(session, 'vg_activate_all', [true]));
  }
}

/** -i: find the one operating system and mount its filesystems, shortest mountpoint first. */
export async function inspectMount(session: Session, opts: Options, keys: KeyReader): Promise<string> {
  await decrypt(session, keys);
  const roots = (await call(session, 'inspect_os')) as string[];
  if (roots.length === 0) {
    throw new CommandFailed(
      "no operating system was found on this disk; instead of -i, use 'run' then 'list-filesystems' and mount filesystems by hand",
    );
  }
  if (roots.length > 1) throw new CommandFailed("multi-boot operating systems are not supported by -i; use 'run' and mount by hand");
  const root = roots[0]!;
  const mps = Object.entries((await call(session, 'inspect_get_mountpoints', [root])) as Record<string, string>);
  // Stable sort by key length, as guestfish's qsort on strlen (ties keep their order).
  mps.sort((a, b) => a[0].length - b[0].length);
  let errors = 0;
  for (const [mp, dev] of mps) {
    try {
      await call(session, opts.readonly ? 'mount_ro' : 'mount', [dev, mp]);
    } catch (e) {
      if (mp === '/') throw e;
      errors++;
    }
  }
  if (errors) process.stderr.write('guestsh: some filesystems could not be mounted (ignored)\n');
  return root;
}

/** -m: mount in command-line order; "ro" is the default options with --ro. */
export async function mountAll(session: Session, mounts: MountArg[], readonly: boolean): Promise<void> {
  for (const m of mounts) {
    const options = m.options ?? (readonly ? 'ro' : '');
    try {
      if (m.fstype) await call(session, 'mount_vfs', [options, m.fstype, m.device, m.mountpoint]);
      else await call(session, 'mount_options', [options, m.device, m.mountpoint]);
    } catch (e) {
      let hint = '';
      try {
        const fs = (await call(session, 'list_filesystems')) as Record<string, string>;
        hint = `; filesystems are: ${Object.entries(fs)
          .map(([d, t]) => `${d} (${t})`)
          .join(', ')}`;
      } catch {
        // the hint is optional
      }
      throw new CommandFailed(`-m ${m.device}:${m.mountpoint}: ${e instanceof Error ? e.message : String(e)}${hint}`);
    }
  }
}

/** The interactive banner's inspection lines. */
export async function inspectBanner(session: Session, root: string): Promise<string> {
  let out = '';
  try {
    const name = (await call(session, 'inspect_get_product_name', [root])) as string;
    if (name && name !== 'unknown') out += `Operating system: ${name}\n`;
    const mps = Object.entries((await call(session, 'inspect_get_mountpoints', [root])) as Record<string, string>);
    mps.sort((a, b) => a[0].toLowerCase().localeCompare(b[0].toLowerCase()));
    for (const [mp, dev] of mps) {
      let shown = dev;
      try {
        shown = (await call(session, 'canonical_device_name', [dev])) as string;
      } catch {
        // not available: show as is
      }
      out += `${shown} mounted on ${mp}\n`;
    }
  } catch {
    // the banner is best effort
  }
  return out;
}
