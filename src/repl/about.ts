// `guestsh --version`: the version, and what this machine's appliance holds
// (which of Debian's optional packages, so which filesystems and groups) and
// which accelerator it runs on and why. Builds and probes nothing: what is
// not known yet says when it will be.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { applianceName } from '../../guests/libguestfs/appliance.js';
import { applianceOptions, currentApplianceDir } from '../runtime/appliance/build.js';
import { knownAccel } from '../runtime/qemu/accel.js';

export async function aboutText(version: string): Promise<string> {
  const lines = [`guestsh ${version} (${applianceName} appliance)`];
  try {
    const dir = await currentApplianceDir();
    const built = existsSync(join(dir, 'root'));
    lines.push(`appliance: ${dir}${built ? '' : ' (not built yet: the first launch builds it)'}`);
    const { present, missing } = applianceOptions();
    for (const p of present) lines.push(`  with ${p.package}: ${p.adds}`);
    for (const p of missing) lines.push(`  without ${p.package} (apt-get install ${p.package}): ${p.adds}`);
    const kernel = ['vmlinux', 'kernel'].map((k) => join(dir, k)).find((k) => existsSync(k));
    const accel = kernel ? await knownAccel(kernel) : null;
    lines.push(`accelerator: ${accel ? `${accel.accel} (${accel.reason})` : 'not probed yet (the first launch tries KVM, then falls back to TCG)'}`);
  } catch (e) {
    lines.push(`appliance: cannot be built here: ${e instanceof Error ? e.message : String(e)}`);
  }
  return `${lines.join('\n')}\n`;
}
