// Builds the appliance (kernel, initrd, ext2 root) with supermin from the host's
// libguestfs packages, once per version of what goes into it (inputs.ts),
// into a versioned cache directory, and keeps it while sessions use it.

import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { runTool } from '../tool.js';
import { applianceName, hostPackages, type OptionalPackage, optionalPackages, superminDirCandidates } from '../../../guests/libguestfs/appliance.js';
import { cacheRoot } from '../cache.js';
import { flock, tryFlock } from '../flock.js';
import { applianceKey } from './inputs.js';
import { UsageError } from '../errors.js';
import { extractPvhKernel } from './pvh.js';

/** The uncompressed ELF kernel, booted at its PVH entry when present. */
const PVH_KERNEL = 'vmlinux';

export interface Appliance {
  dir: string;
  kernel: string;
  initrd: string;
  root: string;
  rootUuid: string;
}

function missing(what: string, pkg: string): UsageError {
  return new UsageError(`cannot build the appliance: ${what} not found; install it with: apt-get install ${pkg}`);
}

/** The ext2 superblock's UUID (offset 1024 + 104), which the kernel mounts root by. */
async function ext2Uuid(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(16);
    await fh.read(buf, 0, 16, 1024 + 104);
    const h = buf.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  } finally {
    await fh.close();
  }
}

async function describe(dir: string): Promise<Appliance> {
  const root = join(dir, 'root');
  const pvh = join(dir, PVH_KERNEL);
  const kernel = existsSync(pvh) ? pvh : join(dir, 'kernel');
  return { dir, kernel, initrd: join(dir, 'initrd'), root, rootUuid: await ext2Uuid(root) };
}

/** Layout of an appliance directory; v3: keyed by the appliance's own inputs (inputs.ts). */
const LAYOUT = 'v3';

function superminDir(): string {
  const dir = superminDirCandidates.find((d) => existsSync(d));
  if (!dir) throw missing('the libguestfs appliance recipe (supermin.d)', hostPackages.recipe);
  return dir;
}

/** Which of Debian's optional appliance packages the host has, so the appliance carries what they add. */
export function applianceOptions(): { present: OptionalPackage[]; missing: OptionalPackage[] } {
  const dir = superminDir();
  const present = optionalPackages.filter((p) => existsSync(join(dir, p.recipe)));
  return { present, missing: optionalPackages.filter((p) => !present.includes(p)) };
}

/** Where the appliance for the host's current inputs lives (built or not). */
export async function currentApplianceDir(): Promise<string> {
  const parent = join(cacheRoot(), 'appliance');
  const key = await applianceKey(superminDir(), `${applianceName}-${LAYOUT}`, join(parent, 'inputs.key'));
  return join(parent, `${applianceName}-${LAYOUT}-${key}`);
}

/** Builds the appliance for the host's current inputs, unless it exists. */
export async function ensureAppliance(log: (line: string) => void = () => {}): Promise<Appliance> {
  const dir = await currentApplianceDir();
  if (existsSync(join(dir, 'root'))) return describe(dir);
  const parent = dirname(dir);

  if (!(await readdir('/boot')).some((f) => f.startsWith('vmlinuz-'))) {
    throw missing('a Linux kernel in /boot', hostPackages.kernel);
  }
  await mkdir(parent, { recursive: true });
  // Builders of one key wait for each other: the first builds, the rest use it.
  const buildLock = await open(join(parent, `.build-${basename(dir)}.lock`), 'a');
  try {
    await flock(buildLock.fd, 'exclusive');
    if (!existsSync(join(dir, 'root'))) await build(superminDir(), dir, log);
  } finally {
    await buildLock.close();
  }
  await removeUnusedAppliances();
  return describe(dir);
}

async function build(superminDir: string, dir: string, log: (line: string) => void): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  log(`building the ${applianceName} appliance with supermin (once per version of its packages) ...`);
  try {
    await runTool('supermin', ['--build', '--copy-kernel', '-f', 'ext2', '--host-cpu', 'x86_64', superminDir, '-o', tmp]);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const err = e as { code?: string; stderr?: string };
    if (err.code === 'ENOENT') throw missing('the supermin program', hostPackages.builder);
    throw new UsageError(`supermin failed to build the appliance: ${(err.stderr ?? String(e)).trim().split('\n').pop()}`);
  }
  if (!(await extractPvhKernel(join(tmp, 'kernel'), join(tmp, PVH_KERNEL)))) {
    log('the kernel cannot be booted directly (PVH); booting it through the BIOS loader instead (slower)');
  }
  await rename(tmp, dir);
  const { present, missing: absent } = applianceOptions();
  log(`appliance ready in ${dir}, with ${present.map((p) => p.package).join(', ') || 'no optional packages'}`);
  if (absent.length) log(`without ${absent.map((p) => p.package).join(', ')} (apt-get install them and the next launch rebuilds it)`);
}

/**
 * Appliances of older inputs are dead weight (a sparse 4 GiB root each, and
 * their saved snapshots), but a running session may still boot from one:
 * each is deleted only under an exclusive flock on its root, which every
 * user holds shared (useAppliance).
 */
export async function removeUnusedAppliances(): Promise<void> {
  const parent = join(cacheRoot(), 'appliance');
  const current = await currentApplianceDir();
  for (const name of await readdir(parent)) {
    const old = join(parent, name);
    if (!name.startsWith(`${applianceName}-`) || old === current || name.includes('.tmp-')) continue;
    const root = await open(join(old, 'root'), 'r').catch(() => null);
    if (!root) {
      await rm(old, { recursive: true, force: true });
      continue;
    }
    try {
      if (tryFlock(root.fd, 'exclusive')) await rm(old, { recursive: true, force: true });
    } finally {
      await root.close();
    }
  }
}

/** An appliance a session boots from, kept from deletion until release(). */
export interface ApplianceUse {
  appliance: Appliance;
  release(): void;
}

export async function useAppliance(log: (line: string) => void = () => {}): Promise<ApplianceUse> {
  for (let attempt = 0; ; attempt++) {
    const appliance = await ensureAppliance(log);
    const fd = openSync(appliance.root, 'r');
    // A remover holds it exclusively while deleting: then build or find the current one again.
    if (tryFlock(fd, 'shared') && existsSync(appliance.root)) {
      let released = false;
      return {
        appliance,
        release: () => {
          if (!released) closeSync(fd);
          released = true;
        },
      };
    }
    closeSync(fd);
    if (attempt >= 2) throw new UsageError(`the appliance in ${appliance.dir} is being removed by another guestsh; try again`);
  }
}
