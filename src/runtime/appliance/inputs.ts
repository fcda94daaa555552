// What goes into the appliance, as a key: the appliance is rebuilt when, and
// only when, one of these changes. supermin copies the packages its recipe
// names and everything they depend on, so the key is the installed version of
// each package in that dependency closure (one dpkg-query, ~20 ms), plus the
// recipe files and the kernels on offer. Installing or upgrading a package
// outside the closure (packer, redis, …) changes nothing. The recipe's
// hostfiles (ld.so.cache, augeas lenses) are left out: they follow from the
// packages, and ld.so.cache changes whenever any library is installed.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runTool } from '../tool.js';

interface Installed {
  version: string;
  /** Each dependency: the alternatives, any one of which satisfies it. */
  depends: string[][];
}

/** `a (>= 1), b:any | c` → [['a'], ['b', 'c']] */
function parseDepends(field: string): string[][] {
  return field
    .split(',')
    .map((dep) =>
      dep
        .split('|')
        .map((alt) => alt.trim().split(/[\s(:]/)[0]!)
        .filter(Boolean),
    )
    .filter((alts) => alts.length > 0);
}

async function installedPackages(): Promise<{ packages: Map<string, Installed>; providers: Map<string, string[]> }> {
  const { stdout } = await runTool('dpkg-query', ['-W', '-f', '${Package}\t${Version}\t${db:Status-Abbrev}\t${Pre-Depends}, ${Depends}\t${Provides}\n']);
  const packages = new Map<string, Installed>();
  const providers = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const [name, version, status, depends, provides] = line.split('\t');
    if (!name || !status?.startsWith('ii')) continue;
    packages.set(name, { version: version!, depends: parseDepends(depends ?? '') });
    for (const [virtual] of parseDepends(provides ?? '')) providers.set(virtual!, [...(providers.get(virtual!) ?? []), name]);
  }
  return { packages, providers };
}

/** Every installed package `roots` pull in, with its version, sorted. */
export async function packageClosure(roots: readonly string[]): Promise<string[]> {
  const { packages, providers } = await installedPackages();
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length) {
    const name = queue.pop()!;
    for (const real of packages.has(name) ? [name] : (providers.get(name) ?? [])) {
      if (seen.has(real)) continue;
      seen.add(real);
      for (const alts of packages.get(real)!.depends) queue.push(...alts.filter((a) => packages.has(a) || providers.has(a)));
    }
  }
  return [...seen].sort().map((p) => `${p}=${packages.get(p)!.version}`);
}

/** The packages supermin's recipe names (`packages` and the optional packages-* files the libguestfs-* packages add). */
export async function recipePackages(superminDir: string): Promise<string[]> {
  const names: string[] = [];
  for (const f of (await readdir(superminDir)).filter((f) => /^(zz-)?packages/.test(f)).sort()) {
    names.push(...(await readFile(join(superminDir, f), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  }
  return names;
}

async function statLine(path: string): Promise<string> {
  const s = await stat(path);
  return `${path}:${s.size}:${s.mtimeMs}`;
}

/**
 * The key of the appliance these inputs build: the same inputs, the same
 * key. Remembered in `memo` against dpkg's database, so a launch pays one
 * stat unless packages changed since.
 */
export async function applianceKey(superminDir: string, layout: string, memo: string): Promise<string> {
  const stamp = `${layout}\n${await statLine(DPKG_STATUS).catch(() => 'no dpkg')}`;
  const remembered = await readFile(memo, 'utf8').catch(() => '');
  if (remembered.startsWith(`${stamp}\n`)) return remembered.slice(stamp.length + 1).trim();
  const key = await computeKey(superminDir, layout);
  await mkdir(dirname(memo), { recursive: true });
  const draft = `${memo}.${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(draft, `${stamp}\n${key}\n`);
  await rename(draft, memo);
  return key;
}

const DPKG_STATUS = '/var/lib/dpkg/status';

async function computeKey(superminDir: string, layout: string): Promise<string> {
  const lines = [layout];
  for (const f of (await readdir(superminDir)).sort()) lines.push(await statLine(join(superminDir, f)));
  for (const f of (await readdir('/boot')).filter((f) => f.startsWith('vmlinuz-')).sort()) lines.push(await statLine(join('/boot', f)));
  lines.push(...(await packageClosure(await recipePackages(superminDir))));
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}
