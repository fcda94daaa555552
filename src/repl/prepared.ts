// guestfish's -N prepared disks: a new raw image in the current directory,
// partitioned and formatted once the appliance runs (disk, part, fs, lv,
// lvfs, bootroot, bootrootlv, with guestfish's defaults).

import type { Session } from '../runtime/session/session.js';
import { UsageError } from '../runtime/errors.js';
import { createDisk } from '../runtime/qemu/img.js';
import type { OpenDrive } from '../runtime/open/open.js';
import { parseInteger } from '../commands/parse.js';

/** -N [FILENAME=]TYPE[:PARAM...] */
export interface PreparedDisk {
  kind: 'prepared';
  path: string;
  type: string;
  params: string[];
}

interface PreparedType {
  /** Parameter names with their defaults, in the order -N takes them. */
  params: [string, string][];
  summary: string;
}

const PREPARED: Record<string, PreparedType> = {
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

/** `-N list`: the types and their parameters. */
export function listPrepared(): string {
  let out = 'List of available prepared disk images (-N TYPE[:PARAM...]):\n\n';
  for (const [name, t] of Object.entries(PREPARED)) {
    out += `${name.padEnd(12)} ${t.summary}\n`;
    t.params.forEach(([p, d], i) => (out += `${''.padEnd(12)}   param ${i + 1}: ${p} (default ${d})\n`));
  }
  return out;
}

/** Parses -N's TYPE[:PARAM...] part; `n` numbers the default file name testN.img. */
export function preparedDisk(spec: string, n: number): PreparedDisk {
  const at = spec.indexOf('=');
  const path = at >= 0 ? spec.slice(0, at) : `test${n}.img`;
  const [type, ...params] = (at >= 0 ? spec.slice(at + 1) : spec).split(':');
  return { kind: 'prepared', path, type: type!, params };
}

function paramsOf(d: PreparedDisk): Record<string, string> {
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

/** A -N disk as a drive to open: its file is made before the appliance starts, its partitions and filesystems after. */
export function preparedDrive(d: PreparedDisk): OpenDrive {
  return { path: d.path, format: 'raw', readonly: false, create: () => createPrepared(d), prepare: (s, device) => formatPrepared(s, d, device) };
}

/** Checks the parameters and creates the (sparse) image file. */
async function createPrepared(d: PreparedDisk): Promise<void> {
  const p = paramsOf(d);
  if (p.name) vgLv(p.name);
  await createDisk(d.path, 'raw', parseInteger(p.size!, '-N size'));
}

/** Partitions and formats a prepared disk once the appliance runs; `device` is its /dev/sdX. */
async function formatPrepared(s: Session, d: PreparedDisk, device: string): Promise<void> {
  const p = paramsOf(d);
  const step = async (what: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      await f();
    } catch (e) {
      throw new Error(`-N ${d.type} (${d.path}): ${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const g = s.g;
  const lvOn = async (part: string, name: string): Promise<void> => {
    const { vg, lv } = vgLv(name);
    await step('pvcreate', () => g.pvcreate(part));
    await step('vgcreate', () => g.vgcreate(vg, [part]));
    await step('lvcreate', () => g.lvcreateFree(lv, vg, 100));
  };
  const bootRoot = async (): Promise<void> => {
    const sector = BigInt(await g.blockdevGetss(device));
    const bootsize = parseInteger(p.bootsize!, '-N bootsize');
    await step('part-init', () => g.partInit(device, p.partition!));
    const lastBoot = 64n + bootsize / sector - 1n;
    await step('part-add', () => g.partAdd(device, 'primary', 64n, lastBoot));
    await step('part-add', () => g.partAdd(device, 'primary', lastBoot + 1n, -64n));
  };
  switch (d.type) {
    case 'disk':
      break;
    case 'part':
      await step('failed to partition disk', () => g.partDisk(device, p.partition!));
      break;
    case 'fs':
      await step('failed to partition disk', () => g.partDisk(device, p.partition!));
      await step(`failed to create filesystem (${p.filesystem})`, () => g.mkfs(p.filesystem!, `${device}1`));
      break;
    case 'lv':
    case 'lvfs':
      await step('failed to partition disk', () => g.partDisk(device, p.partition!));
      await lvOn(`${device}1`, p.name!);
      if (d.type === 'lvfs') await step(`failed to create filesystem (${p.filesystem})`, () => g.mkfs(p.filesystem!, p.name!));
      break;
    case 'bootroot':
      await bootRoot();
      await step('mkfs boot', () => g.mkfs(p.bootfs!, `${device}1`));
      await step('mkfs root', () => g.mkfs(p.rootfs!, `${device}2`));
      break;
    case 'bootrootlv':
      await bootRoot();
      await step('mkfs boot', () => g.mkfs(p.bootfs!, `${device}1`));
      await lvOn(`${device}2`, p.name!);
      await step('mkfs root', () => g.mkfs(p.rootfs!, p.name!));
      break;
  }
}
