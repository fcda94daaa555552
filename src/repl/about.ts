// `guestsh --version`: the version, and what this machine's appliance holds
// (which of Debian's optional packages, so which filesystems and groups) and
// which accelerator it runs on and why. Builds and probes nothing: what is
// not known yet says when it will be.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applianceName } from '../../guests/libguestfs/appliance.js';
import { applianceOptions, currentApplianceDir } from '../runtime/appliance/build.js';
import { knownAccel } from '../runtime/qemu/accel.js';

/** The version in guestsh's own package.json, found upwards from this module (src/ under tsx, dist/src/ built, or an installed package). */
export function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'guestsh' && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) throw new Error("guestsh's package.json is missing: reinstall guestsh");
  }
}

export async function aboutText(): Promise<string> {
  const lines = [`guestsh ${packageVersion()} (${applianceName} appliance)`];
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
