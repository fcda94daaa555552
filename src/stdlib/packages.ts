// Package operations through the guest's own package manager (apt, dnf,
// yum, zypper, apk, pacman), run inside the guest by the daemon; each
// reports the packages that came, went or changed version.

import * as firstboot from './firstboot.js';
import { type Change, type Ctx, note, shq, tmpName } from './util.js';

export type PackageManager = 'apt' | 'dnf' | 'yum' | 'zypper' | 'apk' | 'pacman';

const PM_BINARIES: [PackageManager, string][] = [
  ['apt', 'apt-get'], ['dnf', 'dnf'], ['yum', 'yum'], ['zypper', 'zypper'], ['apk', 'apk'], ['pacman', 'pacman'],
];

/** The guest's package manager, found by its program in /usr/bin, /bin, /usr/sbin or /sbin. */
export async function packageManager(ctx: Ctx): Promise<PackageManager> {
  for (const [pm, bin] of PM_BINARIES) {
    for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) if (await ctx.g.isFile(`${dir}/${bin}`, { followsymlinks: true })) return pm;
  }
  throw new Error('packages: the guest has none of apt-get, dnf, yum, zypper, apk, pacman');
}

const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef';

/** The shell commands for each package manager. `pkgs` are already shell-quoted. */
const PM_COMMANDS: Record<PackageManager, { install: (p: string) => string; update: string; uninstall: (p: string, purge: boolean) => string; localInstall: (p: string) => string }> = {
  apt: {
    install: (p) => `apt-get -q update && ${APT} install ${p}`,
    update: `apt-get -q update && ${APT} upgrade`,
    uninstall: (p, purge) => `${APT} ${purge ? 'purge' : 'remove'} ${p}`,
    localInstall: (p) => `DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i ${p}`,
  },
  dnf: { install: (p) => `dnf -y install ${p}`, update: 'dnf -y --best upgrade', uninstall: (p) => `dnf -y remove ${p}`, localInstall: (p) => `rpm -Uvh ${p}` },
  yum: { install: (p) => `yum -y install ${p}`, update: 'yum -y update', uninstall: (p) => `yum -y remove ${p}`, localInstall: (p) => `rpm -Uvh ${p}` },
  zypper: { install: (p) => `zypper -n in -l ${p}`, update: 'zypper -n update -l', uninstall: (p) => `zypper -n rm ${p}`, localInstall: (p) => `rpm -Uvh ${p}` },
  apk: { install: (p) => `apk update && apk add ${p}`, update: 'apk update && apk upgrade', uninstall: (p) => `apk del ${p}`, localInstall: (p) => `apk add --allow-untrusted ${p}` },
  pacman: { install: (p) => `pacman -Sy --noconfirm ${p}`, update: 'pacman -Syu --noconfirm', uninstall: (p) => `pacman -R --noconfirm ${p}`, localInstall: (p) => `pacman -U --noconfirm ${p}` },
};

const PM_DB: Record<PackageManager, { path: string; list: string }> = {
  apt: { path: '/var/lib/dpkg/status', list: "dpkg-query -W -f '${db:Status-Abbrev} ${Package}:${Architecture} ${Version}\\n' | sed -n 's/^.i. //p'" },
  dnf: { path: '/var/lib/rpm', list: "rpm -qa --qf '%{NAME}.%{ARCH} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'" },
  yum: { path: '/var/lib/rpm', list: "rpm -qa --qf '%{NAME}.%{ARCH} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'" },
  zypper: { path: '/var/lib/rpm', list: "rpm -qa --qf '%{NAME}.%{ARCH} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'" },
  apk: { path: '/lib/apk/db/installed', list: "apk info -v 2>/dev/null | sed 's/-\\([0-9][^-]*-r[0-9]*\\)$/ \\1/'" },
  pacman: { path: '/var/lib/pacman/local', list: 'pacman -Q' },
};

/** Installed packages: name (with architecture where the manager has one) → version. */
export async function installedPackages(ctx: Ctx, pm?: PackageManager): Promise<Map<string, string>> {
  const m = pm ?? (await packageManager(ctx));
  const out = new Map<string, string>();
  for (const line of (await ctx.g.sh(PM_DB[m].list)).split('\n')) {
    const [name, version] = line.trim().split(/\s+/);
    if (name && version) out.set(name, version);
  }
  return out;
}

const PKG_NAME = /^[A-Za-z0-9@_+][A-Za-z0-9@_+.:=~<>*-]*$/;
const isLocalPackage = (p: string): boolean => /\.(deb|rpm|apk|pkg\.tar\.[a-z0-9]+)$/.test(p) || p.includes('/');

/** Runs a package command in the guest and reports each package that came, went or changed version. */
async function packageRun(ctx: Ctx, op: string, pm: PackageManager, cmd: string): Promise<Change[]> {
  const before = await installedPackages(ctx, pm);
  ctx.log?.(`${op}: ${cmd}`);
  let out: string;
  try {
    out = await ctx.g.sh(`${cmd} 2>&1`);
  } catch (e) {
    throw new Error(`${op}: the guest's package manager failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const tail = out.trimEnd().split('\n').slice(-5).join('\n');
  if (tail) ctx.log?.(tail);
  const after = await installedPackages(ctx, pm);
  const changes: Change[] = [];
  const path = PM_DB[pm].path;
  for (const [name, v] of after) {
    const old = before.get(name);
    if (old === undefined) note(ctx, changes, { op, action: 'created', path, detail: `${name} ${v}` });
    else if (old !== v) note(ctx, changes, { op, action: 'modified', path, detail: `${name} ${old} → ${v}` });
  }
  for (const [name, v] of before) if (!after.has(name)) note(ctx, changes, { op, action: 'removed', path, detail: `${name} ${v}` });
  return changes;
}

async function needNetwork(ctx: Ctx, op: string): Promise<void> {
  if (!(await ctx.g.getNetwork())) {
    throw new Error(`${op}: fetching packages needs the appliance network, which this session was launched without (guestsh run --network, the shell's --network, or Session settings.network = true)`);
  }
}

/**
 * Installs packages with the guest's package manager. Names are fetched
 * from the guest's configured repositories, which needs the appliance
 * network. Host package files (paths beside the recipe, e.g. "tool_1.0_all.deb")
 * are uploaded and installed offline (dpkg -i / rpm -U / apk add / pacman -U)
 * when no names are given; their dependencies must then be installed already.
 */
export async function install(ctx: Ctx, packages: string | string[]): Promise<Change[]> {
  const list = (Array.isArray(packages) ? packages : packages.split(',')).map((p) => p.trim()).filter(Boolean);
  if (list.length === 0) throw new Error('install: no packages given');
  const pm = await packageManager(ctx);
  const names = list.filter((p) => !isLocalPackage(p));
  const files = list.filter(isLocalPackage);
  for (const n of names) if (!PKG_NAME.test(n)) throw new Error(`install: '${n}' is not a package name`);
  if (names.length) await needNetwork(ctx, 'install');
  const dir = tmpName('pkgs');
  const uploaded: string[] = [];
  if (files.length) {
    await ctx.g.mkdir(dir);
    for (const f of files) {
      const dest = `${dir}/${f.split('/').pop()}`;
      await ctx.g.upload(f, dest);
      uploaded.push(dest);
    }
  }
  try {
    const cmds = PM_COMMANDS[pm];
    // With names, the manager resolves everything together (apt and dnf take package files too).
    const cmd = names.length
      ? cmds.install([...uploaded, ...names].map(shq).join(' '))
      : cmds.localInstall(uploaded.map(shq).join(' '));
    return await packageRun(ctx, 'install', pm, cmd);
  } finally {
    if (files.length) await ctx.g.rmRf(dir);
  }
}

/** Updates every installed package to the newest version the guest's repositories offer (needs the appliance network). */
export async function update(ctx: Ctx): Promise<Change[]> {
  const pm = await packageManager(ctx);
  await needNetwork(ctx, 'update');
  return packageRun(ctx, 'update', pm, PM_COMMANDS[pm].update);
}

/** Removes packages (and what depends on them) with the guest's package manager; works offline. `purge`: apt also removes their configuration files. */
export async function uninstall(ctx: Ctx, packages: string | string[], opts: { purge?: boolean } = {}): Promise<Change[]> {
  const list = (Array.isArray(packages) ? packages : packages.split(',')).map((p) => p.trim()).filter(Boolean);
  if (list.length === 0) throw new Error('uninstall: no packages given');
  for (const n of list) if (!PKG_NAME.test(n)) throw new Error(`uninstall: '${n}' is not a package name`);
  const pm = await packageManager(ctx);
  return packageRun(ctx, 'uninstall', pm, PM_COMMANDS[pm].uninstall(list.map(shq).join(' '), opts.purge ?? false));
}

/** Installs packages at the guest's first boot (a firstboot script running the guest's package manager). */
export async function firstbootInstall(ctx: Ctx, packages: string | string[]): Promise<Change[]> {
  const list = (Array.isArray(packages) ? packages : packages.split(',')).map((p) => p.trim()).filter(Boolean);
  if (list.length === 0) throw new Error('firstboot-install: no packages given');
  for (const n of list) if (!PKG_NAME.test(n)) throw new Error(`firstboot-install: '${n}' is not a package name`);
  const pm = await packageManager(ctx);
  return firstboot.addScript(ctx, 'install', `#!/bin/sh\n${PM_COMMANDS[pm].install(list.map(shq).join(' '))}\n`);
}
