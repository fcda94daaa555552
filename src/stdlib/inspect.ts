// A read-only inspection report of the guest (what virt-inspector prints,
// in short), for recipes that check an image before or after changing it.

import type { RecipeParamSpecs } from '../spec/values.js';
import type { GuestfsApi } from '../spec/api.generated.js';
import { type Ctx, passwd, readText } from './util.js';

export interface InspectionReport {
  root: string;
  type: string;
  distro: string;
  version: string;
  productName: string;
  hostname: string;
  arch: string;
  packageFormat: string;
  packageManagement: string;
  mountpoints: Record<string, string>;
  filesystems: Record<string, string>;
  packages: number;
  users: { name: string; uid: number; home: string; shell: string }[];
  sshHostKeys: string[];
  machineId: string | null;
}

async function orEmpty(f: () => Promise<string>): Promise<string> {
  try {
    return await f();
  } catch {
    return '';
  }
}

/** Inspects the disk; mounts the guest read-only when nothing is mounted yet (and leaves it mounted). */
export async function inspectReport(ctx: Ctx): Promise<InspectionReport> {
  const g: GuestfsApi = ctx.g;
  const roots = await g.inspectOs();
  if (roots.length === 0) throw new Error('inspect: no operating system found');
  const root = roots[0]!;
  const mountpoints = await g.inspectGetMountpoints(root);
  if ((await g.mounts()).length === 0) {
    for (const [mp, dev] of Object.entries(mountpoints).sort((a, b) => a[0].length - b[0].length)) {
      await g.mountRo(dev, mp).catch(() => undefined);
    }
  }
  const users = (await passwd(g)).filter((u) => u.uid === 0 || u.uid >= 1000).filter((u) => u.name !== 'nobody');
  let packages = 0;
  try {
    packages = (await g.inspectListApplications2(root)).length;
  } catch {
    packages = 0;
  }
  return {
    root,
    type: await orEmpty(() => g.inspectGetType(root)),
    distro: await orEmpty(() => g.inspectGetDistro(root)),
    version: `${await g.inspectGetMajorVersion(root)}.${await g.inspectGetMinorVersion(root)}`,
    productName: await orEmpty(() => g.inspectGetProductName(root)),
    hostname: await orEmpty(() => g.inspectGetHostname(root)),
    arch: await orEmpty(() => g.inspectGetArch(root)),
    packageFormat: await orEmpty(() => g.inspectGetPackageFormat(root)),
    packageManagement: await orEmpty(() => g.inspectGetPackageManagement(root)),
    mountpoints,
    filesystems: await g.listFilesystems(),
    packages,
    users: users.map(({ name, uid, home, shell }) => ({ name, uid, home, shell })),
    sshHostKeys: await g.globExpand('/etc/ssh/ssh_host_*_key', { directoryslash: false }),
    machineId: ((await readText(g, '/etc/machine-id')) ?? '').trim() || null,
  };
}

/** The inspect recipe takes no params, and only reads. */
export const params: RecipeParamSpecs = {};
export const readOnly = true;

/** As a ready recipe: logs the report and returns it (printed by `guestsh run --json`). */
export default async function recipe(ctx: Ctx): Promise<InspectionReport> {
  const r = await inspectReport(ctx);
  ctx.log?.(`${r.productName || r.distro} (${r.arch}), hostname ${r.hostname}, ${r.packages} packages, users: ${r.users.map((u) => u.name).join(', ')}`);
  return r;
}
