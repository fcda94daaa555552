// Inspection helpers libguestfs keeps in the library: the installed
// application list (read from the guest's package database through the
// daemon), the libosinfo short id, and the OS icon. Like libguestfs, they
// expect the guest's filesystems to be mounted (inspect_os + mount).

import type { Application, Application2, InspectGetIconOptions } from '../../../spec/api.js';
import { GuestfsError } from '../../errors.js';
import type { LibraryTable, SessionHost } from '../host.js';
import { downloadToBuffer } from './util.js';

interface App {
  name: string;
  displayName?: string;
  epoch?: number;
  version: string;
  release?: string;
  arch?: string;
  installPath?: string;
  publisher?: string;
  url?: string;
  source?: string;
  summary?: string;
  description?: string;
}

function app2(a: App): Application2 {
  return {
    app2_name: a.name,
    app2_display_name: a.displayName ?? '',
    app2_epoch: a.epoch ?? 0,
    app2_version: a.version,
    app2_release: a.release ?? '',
    app2_arch: a.arch ?? '',
    app2_install_path: a.installPath ?? '',
    app2_trans_path: '',
    app2_publisher: a.publisher ?? '',
    app2_url: a.url ?? '',
    app2_source_package: a.source ?? '',
    app2_summary: a.summary ?? '',
    app2_description: a.description ?? '',
    app2_spare1: '',
    app2_spare2: '',
    app2_spare3: '',
    app2_spare4: '',
  };
}

/** "[epoch:]version[-release]" → parts; epoch -1 when it is not a number. */
function splitVersion(v: string): { epoch: number; version: string; release: string | undefined } {
  let epoch = 0;
  let rest = v;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    epoch = /^\d+$/.test(v.slice(0, colon)) ? Number(v.slice(0, colon)) : -1;
    rest = v.slice(colon + 1);
  }
  const dash = rest.indexOf('-');
  if (dash < 0) return { epoch, version: rest, release: undefined };
  return { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
}

/** /var/lib/dpkg/status: stanzas separated by blank lines; installed ones become apps. */
export function parseDpkgStatus(text: string): App[] {
  const apps: App[] = [];
  let cur: Partial<App> & { installed?: boolean; epoch?: number } = {};
  let inDescription = false;
  const flush = () => {
    if (cur.installed && cur.name && cur.version !== undefined && (cur.epoch ?? 0) >= 0) apps.push(cur as App);
    cur = {};
    inDescription = false;
  };
  const lines = text.split('\n');
  // A final newline ends the last line; it does not start an empty one.
  if (lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    if (line.startsWith(' ') && inDescription) {
      cur.description = cur.description === undefined ? line.slice(1) : `${cur.description}\n${line.slice(1)}`;
      continue;
    }
    inDescription = false;
    if (line.startsWith('Package: ')) cur.name = line.slice(9);
    else if (line.startsWith('Status: ')) cur.installed = line.slice(8).includes('installed');
    else if (line.startsWith('Version: ')) Object.assign(cur, splitVersion(line.slice(9)));
    else if (line.startsWith('Architecture: ')) cur.arch = line.slice(14);
    else if (line.startsWith('Homepage: ')) cur.url = line.slice(10);
    else if (line.startsWith('Source: ')) cur.source = line.slice(8).split(' ')[0];
    else if (line.startsWith('Description: ')) {
      cur.summary = line.slice(13);
      inDescription = true;
    } else if (line === '') flush();
  }
  return apps;
}

/** Alpine's /lib/apk/db/installed: "X:value" lines, stanzas separated by blank lines. */
export function parseApkInstalled(text: string): App[] {
  const apps: App[] = [];
  let cur: Partial<App> & { epoch?: number } = {};
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    if (line.length > 1 && line[1] !== ':') continue;
    const v = line.slice(2);
    switch (line[0]) {
      case undefined:
        if (cur.name && cur.version !== undefined && (cur.epoch ?? 0) >= 0) apps.push(cur as App);
        cur = {};
        break;
      case 'A':
        cur.arch = v;
        break;
      case 'P':
        cur.name = v;
        break;
      case 'T':
        cur.description = v;
        break;
      case 'U':
        cur.url = v;
        break;
      case 'V': {
        const sv = splitVersion(v);
        cur.epoch = sv.epoch;
        cur.version = sv.version;
        cur.release = sv.release?.startsWith('r') ? sv.release.slice(1) : sv.release;
        break;
      }
    }
  }
  return apps;
}

async function pacmanApps(s: SessionHost): Promise<App[]> {
  const dir = '/var/lib/pacman/local';
  const entries = await s.g.readdir(dir);
  const apps: App[] = [];
  for (const e of entries) {
    if (e.ftyp !== 'd' || e.name === '.' || e.name === '..') continue;
    let text: string;
    try {
      text = (await downloadToBuffer(s, `${dir}/${e.name}/desc`)).toString('utf8');
    } catch (err) {
      if (err instanceof GuestfsError) continue;
      throw err;
    }
    const fields: Record<string, string> = {};
    let key: string | null = null;
    for (const line of text.split('\n')) {
      if (line === '') key = null;
      else if (key) {
        fields[key] = line;
        key = null;
      } else if (/^%[A-Z]+%$/.test(line)) key = line;
    }
    const name = fields['%NAME%'];
    const version = fields['%VERSION%'];
    const arch = fields['%ARCH%'];
    if (!name || !version || !arch) continue;
    const sv = splitVersion(version);
    if (sv.epoch < 0 || !sv.version || !sv.release) continue;
    apps.push({ name, epoch: sv.epoch, version: sv.version, release: sv.release, arch, url: fields['%URL%'], description: fields['%DESC%'] });
  }
  return apps;
}

async function hivexString(s: SessionHost, node: bigint, key: string): Promise<string | undefined> {
  const v = await s.g.hivexNodeGetValue(node, key);
  if (v === 0n) return undefined;
  try {
    return await s.g.hivexValueString(v);
  } catch (e) {
    if (e instanceof GuestfsError) return undefined;
    throw e;
  }
}

async function windowsApps(s: SessionHost, root: string): Promise<App[]> {
  const hive = await s.g.inspectGetWindowsSoftwareHive(root);
  await s.g.hivexOpen(hive, { verbose: s.settings.verbose, unsafe: true });
  const apps: App[] = [];
  try {
    for (const path of [
      ['Microsoft', 'Windows', 'CurrentVersion', 'Uninstall'],
      ['WOW6432node', 'Microsoft', 'Windows', 'CurrentVersion', 'Uninstall'],
    ]) {
      let node = await s.g.hivexRoot();
      for (const p of path) {
        if (node === 0n) break;
        node = await s.g.hivexNodeGetChild(node, p);
      }
      if (node === 0n) continue;
      const children = await s.g.hivexNodeChildren(node);
      for (const c of children) {
        const child = c.hivex_node_h;
        const name = await s.g.hivexNodeName(child);
        const displayName = await hivexString(s, child, 'DisplayName');
        if (displayName === undefined) continue;
        apps.push({
          name,
          displayName,
          version: (await hivexString(s, child, 'DisplayVersion')) ?? '',
          installPath: await hivexString(s, child, 'InstallLocation'),
          publisher: await hivexString(s, child, 'Publisher'),
          url: await hivexString(s, child, 'URLInfoAbout'),
          description: await hivexString(s, child, 'Comments'),
        });
      }
    }
  } finally {
    await s.g.hivexClose();
  }
  return apps;
}

async function listApplications2(s: SessionHost, root: string): Promise<Application2[]> {
  const type = await s.g.inspectGetType(root);
  const format = await s.g.inspectGetPackageFormat(root);
  let list: Application2[] = [];
  if (type === 'linux' || type === 'hurd') {
    if (format === 'rpm') list = await s.internal.internalListRpmApplications();
    else if (format === 'deb') list = parseDpkgStatus((await downloadToBuffer(s, '/var/lib/dpkg/status')).toString('utf8')).map(app2);
    else if (format === 'pacman') list = (await pacmanApps(s)).map(app2);
    else if (format === 'apk') list = parseApkInstalled((await downloadToBuffer(s, '/lib/apk/db/installed')).toString('utf8')).map(app2);
  } else if (type === 'windows') {
    list = (await windowsApps(s, root)).map(app2);
  }
  return list.sort((a, b) => Buffer.compare(Buffer.from(a.app2_name), Buffer.from(b.app2_name)));
}

function app1(a: Application2): Application {
  return {
    app_name: a.app2_name,
    app_display_name: a.app2_display_name,
    app_epoch: a.app2_epoch,
    app_version: a.app2_version,
    app_release: a.app2_release,
    app_install_path: a.app2_install_path,
    app_trans_path: a.app2_trans_path,
    app_publisher: a.app2_publisher,
    app_url: a.app2_url,
    app_source_package: a.app2_source_package,
    app_summary: a.app2_summary,
    app_description: a.app2_description,
  };
}

/** The libosinfo short id for an inspected root ("debian12", "win10", …), "unknown" when there is none. */
export function osinfoId(type: string, distro: string, major: number, minor: number, productName = '', variant = ''): string {
  if (type === 'linux') {
    switch (distro) {
      case 'centos':
        if (major >= 8) return `centos${major}`;
        if (major === 7) return 'centos7.0';
        if (major === 6) return `centos6.${minor}`;
        break;
      case 'rocky':
        if (major >= 8) return `rocky${major}`;
        break;
      case 'debian':
        if (major >= 4) return `debian${major}`;
        break;
      case 'fedora':
      case 'mageia':
        return `${distro}${major}`;
      case 'sles':
        return minor === 0 ? `sles${major}` : `sles${major}sp${minor}`;
      case 'ubuntu':
        return `ubuntu${major}.${String(minor).padStart(2, '0')}`;
      case 'archlinux':
      case 'gentoo':
      case 'voidlinux':
        return distro;
      case 'altlinux':
        return major >= 8 ? `alt${major}.${minor}` : `altlinux${major}.${minor}`;
    }
    if (distro !== 'unknown' && (major > 0 || minor > 0)) return `${distro}${major}.${minor}`;
  } else if (type === 'freebsd' || type === 'netbsd' || type === 'openbsd') {
    return `${distro}${major}.${minor}`;
  } else if (type === 'dos') {
    if (distro === 'msdos') return 'msdos6.22';
  } else if (type === 'windows') {
    const server = variant.includes('Server');
    if (major === 5 && minor === 1) return 'winxp';
    if (major === 5 && minor === 2) return productName.includes('XP') ? 'winxp' : productName.includes('R2') ? 'win2k3r2' : 'win2k3';
    if (major === 6) {
      const names: Record<number, [string, string]> = { 0: ['win2k8', 'winvista'], 1: ['win2k8r2', 'win7'], 2: ['win2k12', 'win8'], 3: ['win2k12r2', 'win8.1'] };
      const n = names[minor];
      if (n) return server ? n[0] : n[1];
    }
    if (major === 10 && minor === 0) {
      if (!server) return 'win10';
      return productName.includes('2022') ? 'win2k22' : productName.includes('2019') ? 'win2k19' : 'win2k16';
    }
  }
  return 'unknown';
}

async function getOsinfo(s: SessionHost, root: string): Promise<string> {
  const type = await s.g.inspectGetType(root);
  const distro = await s.g.inspectGetDistro(root);
  const major = await s.g.inspectGetMajorVersion(root);
  const minor = await s.g.inspectGetMinorVersion(root);
  let product = '';
  let variant = '';
  if (type === 'windows') {
    product = await s.g.inspectGetProductName(root);
    variant = await s.g.inspectGetProductVariant(root);
  }
  return osinfoId(type, distro, major, minor, product, variant);
}

// Distribution logos, tried in order (first PNG of a sane size wins).
const DISTRO_ICONS: Record<string, string[]> = {
  fedora: ['/usr/share/icons/hicolor/96x96/apps/fedora-logo-icon.png'],
  rhel: ['/usr/share/pixmaps/redhat/shadowman-transparent.png', '/usr/share/icons/hicolor/96x96/apps/system-logo-icon.png'],
  debian: ['/usr/share/pixmaps/debian-logo.png'],
  ubuntu: ['/usr/share/icons/gnome/24x24/places/ubuntu-logo.png', '/usr/share/help/C/ubuntu-help/figures/ubuntu-logo.png'],
  mageia: ['/usr/share/icons/mageia.png'],
  opensuse: ['/usr/share/icons/hicolor/48x48/apps/distributor.png', '/usr/share/icons/hicolor/24x24/apps/distributor.png'],
  voidlinux: ['/usr/share/void-artwork/void-logo.png'],
  altlinux: ['/usr/share/icons/hicolor/48x48/apps/altlinux.png'],
  gentoo: ['/usr/share/icons/gentoo/48x48/gentoo.png'],
  openmandriva: ['/usr/share/icons/large/mandriva.png', '/usr/share/icons/mandriva.png'],
};
for (const d of ['redhat-based', 'centos', 'rocky', 'scientificlinux', 'oraclelinux']) DISTRO_ICONS[d] = DISTRO_ICONS.rhel!;
for (const d of ['suse-based', 'sles']) DISTRO_ICONS[d] = DISTRO_ICONS.opensuse!;

/** A PNG at `path` (symlinks followed) between 16x16 and 1024x1024, else null. */
async function getPng(s: SessionHost, path: string): Promise<Buffer | null> {
  if (!(await s.g.isFile(path, { followsymlinks: true }))) return null;
  let real: string;
  try {
    real = await s.g.realpath(path);
  } catch (e) {
    if (e instanceof GuestfsError) return null;
    throw e;
  }
  const desc = await s.g.file(real);
  const m = /^PNG image data, (\d+) x (\d+)/.exec(desc);
  if (!m) return null;
  const w = Number(m[1]);
  const h = Number(m[2]);
  if (w < 16 || h < 16 || w > 1024 || h > 1024) return null;
  const data = await downloadToBuffer(s, real);
  return data.length <= 4 * w * h ? data : null;
}

async function getIcon(s: SessionHost, root: string, opt: InspectGetIconOptions): Promise<Buffer> {
  const type = await s.g.inspectGetType(root);
  const distro = await s.g.inspectGetDistro(root);
  const highquality = opt.highquality ?? false;
  const favicon = highquality ? false : (opt.favicon ?? true);
  if (favicon) {
    let fav = '/etc/favicon.png';
    if (type === 'windows') fav = await s.g.caseSensitivePath(fav).catch(() => fav);
    const r = await getPng(s, fav);
    if (r) return r;
  }
  // Windows icons live inside explorer.exe and cirros's is ASCII art: both need
  // image tools on the host, so guestsh (like libguestfs without them) has none.
  if (type === 'linux' || type === 'hurd') {
    for (const p of DISTRO_ICONS[distro] ?? []) {
      const r = await getPng(s, p);
      if (r) return r;
    }
  }
  return Buffer.alloc(0);
}

export const inspectActions: LibraryTable = {
  inspect_list_applications2: (s, root) => listApplications2(s, root),
  inspect_list_applications: async (s, root) => (await listApplications2(s, root)).map(app1),
  inspect_get_osinfo: (s, root) => getOsinfo(s, root),
  inspect_get_icon: (s, root, opt) => getIcon(s, root, opt),
};
