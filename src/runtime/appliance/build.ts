// Builds the appliance (kernel, initrd, ext2 root) with supermin from the host's
// libguestfs packages, once per host state, into a versioned cache directory.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { applianceName, hostPackages, superminDirCandidates } from '../../../guests/libguestfs/appliance.js';
import { cacheRoot } from '../cache.js';
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

async function statLine(path: string): Promise<string> {
  const s = await stat(path);
  return `${path}:${s.size}:${s.mtimeMs}`;
}

/**
 * Everything the appliance is built from, cheaply summarised: the supermin
 * recipe files, the kernels on offer, and dpkg's database (it changes whenever
 * any package the recipe pulls in is upgraded).
 */
async function hostStateKey(superminDir: string): Promise<string> {
  const lines = [applianceName];
  for (const f of (await readdir(superminDir)).sort()) lines.push(await statLine(join(superminDir, f)));
  for (const f of (await readdir('/boot')).filter((f) => f.startsWith('vmlinuz-')).sort()) {
    lines.push(await statLine(join('/boot', f)));
  }
  if (existsSync('/var/lib/dpkg/status')) lines.push(await statLine('/var/lib/dpkg/status'));
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
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

export async function ensureAppliance(log: (line: string) => void = () => {}): Promise<Appliance> {
  const superminDir = superminDirCandidates.find((d) => existsSync(d));
  if (!superminDir) throw missing('the libguestfs appliance recipe (supermin.d)', hostPackages.recipe);
  const key = await hostStateKey(superminDir);
  const parent = join(cacheRoot(), 'appliance');
  // v2: the layout gained the PVH kernel.
  const dir = join(parent, `${applianceName}-v2-${key}`);
  if (existsSync(join(dir, 'root'))) return describe(dir);

  if (!(await readdir('/boot')).some((f) => f.startsWith('vmlinuz-'))) {
    throw missing('a Linux kernel in /boot', hostPackages.kernel);
  }
  await mkdir(parent, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  log(`building the ${applianceName} appliance with supermin (once per host package state) ...`);
  try {
    await execa('supermin', ['--build', '--copy-kernel', '-f', 'ext2', '--host-cpu', 'x86_64', superminDir, '-o', tmp]);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const err = e as { code?: string; stderr?: string };
    if (err.code === 'ENOENT') throw missing('the supermin program', hostPackages.builder);
    throw new UsageError(`supermin failed to build the appliance: ${(err.stderr ?? String(e)).trim().split('\n').pop()}`);
  }
  if (!(await extractPvhKernel(join(tmp, 'kernel'), join(tmp, PVH_KERNEL)))) {
    log('the kernel cannot be booted directly (PVH); booting it through the BIOS loader instead (slower)');
  }
  try {
    await rename(tmp, dir);
  } catch {
    // Another process built it first: use theirs.
    await rm(tmp, { recursive: true, force: true });
  }
  // Appliances for older host states are dead weight (a sparse 4 GiB root each).
  for (const old of await readdir(parent)) {
    if (old.startsWith(`${applianceName}-`) && join(parent, old) !== dir && !old.includes('.tmp-')) {
      await rm(join(parent, old), { recursive: true, force: true });
    }
  }
  log(`appliance ready in ${dir}`);
  return describe(dir);
}
