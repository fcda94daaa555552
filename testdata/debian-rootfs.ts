// Step 1 of the `debian` guest (and of `bootable`): a debootstrapped Debian
// root, scrubbed of what depends on the build host or the moment of the build,
// cached as a tarball so that changing the image layout (debian.ts) never
// re-runs debootstrap. The cache key is this file's content plus the
// parameters below, the flavour (package set, slimming) among them.
//
// Determinism: the tarball is written reproducibly (sorted, numeric owners,
// mtimes clamped to GUEST_EPOCH, no atime/ctime), and two cold runs against
// the same mirror state gave byte-identical tarballs. But debootstrap fetches
// whatever the mirror has today (point releases, security updates), so across
// days the package set moves; the cached tarball is what pins a guest.
// debootstrap 1.0.128 ignores SOURCE_DATE_EPOCH, hence the clamping.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findAptSource } from './apt-mirror.js';
import { BuildError, buildOnce, cacheKey, makeTempDir, publish, removeTree, run, step, walkTree } from './build-support.js';

export const DEBIAN_SUITE = 'bookworm';
const VARIANT = 'minbase';

/** Which root: what debootstrap installs on top of minbase, and what is cut afterwards. */
export interface RootfsFlavour {
  /** Prefix of the cached tarball's name. */
  name: string;
  /** Installed on top of minbase (debootstrap --include). */
  packages: string[];
  /** Remove documentation, man and info pages and message catalogues (they only take space in a test guest). */
  slim: boolean;
}

// What a small server has; everything inspection needs (/etc/os-release,
// /etc/debian_version, the dpkg database) already comes with minbase.
export const SERVER_ROOTFS: RootfsFlavour = {
  name: 'debian-rootfs',
  packages: ['openssh-server', 'sudo', 'cron'],
  slim: false,
};

/**
 * systemd creates /etc/machine-id at random when it is installed; a fixed
 * one keeps the tarball reproducible and, being valid, keeps systemd from
 * treating the guest's boot as its first (ConditionFirstBoot units).
 */
export const GUEST_MACHINE_ID = '6775e57a0000400080000000000000ad';

/** 2023-06-10T00:00:00Z, bookworm's release day: no file in a guest is newer. */
export const GUEST_EPOCH = 1686355200;

/** GUEST_EPOCH in days, the unit of /etc/shadow's "last password change". */
export const GUEST_EPOCH_DAY = Math.floor(GUEST_EPOCH / 86400);

async function hostArchitecture(): Promise<string> {
  return (await run('dpkg', ['--print-architecture'])).trim();
}

/** Where the root tarball for this machine's architecture is cached (it may not exist yet). */
export async function debianRootfsTarball(cacheDir: string, flavour: RootfsFlavour = SERVER_ROOTFS): Promise<string> {
  const parameters = {
    suite: DEBIAN_SUITE,
    variant: VARIANT,
    packages: flavour.packages,
    slim: flavour.slim,
    architecture: await hostArchitecture(),
    GUEST_EPOCH,
  };
  return path.join(cacheDir, `${flavour.name}-${cacheKey([fileURLToPath(import.meta.url)], parameters)}.tar.zst`);
}

/** The cached root tarball, built first if the cache lacks it. */
export async function ensureDebianRootfs(cacheDir: string, flavour: RootfsFlavour = SERVER_ROOTFS): Promise<string> {
  const tarball = await debianRootfsTarball(cacheDir, flavour);
  await buildOnce(tarball, async () => {
    const work = makeTempDir(cacheDir, flavour.name);
    try {
      const root = path.join(work, 'root');
      await debootstrap(root, await hostArchitecture(), cacheDir, flavour);
      step(`${flavour.name}: scrubbing host-specific and time-specific files`);
      scrub(root);
      if (flavour.slim) {
        step(`${flavour.name}: removing documentation, man pages and message catalogues`);
        slim(root);
      }
      step(`${flavour.name}: packing root into a tarball`);
      await run('zstd', ['--version']); // tar runs zstd itself and would only say "Cannot exec"
      const packed = path.join(work, 'rootfs.tar.zst');
      await run('tar', [
        '--create', '--zstd', `--file=${packed}`, `--directory=${root}`,
        '--sort=name', '--numeric-owner', '--format=posix',
        '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
        `--mtime=@${GUEST_EPOCH}`, '--clamp-mtime',
        '--xattrs', '--xattrs-include=*',
        '.',
      ]);
      await publish(packed, tarball);
    } finally {
      await removeTree(work);
    }
  });
  return tarball;
}

async function debootstrap(root: string, architecture: string, cacheDir: string, flavour: RootfsFlavour): Promise<void> {
  const source = findAptSource(DEBIAN_SUITE);
  step(`${flavour.name}: debootstrap ${DEBIAN_SUITE} (${VARIANT} + ${flavour.packages.join(',')}) from ${source.uri}`);
  const started = Date.now();
  try {
    await run('debootstrap', [
      `--variant=${VARIANT}`,
      `--include=${flavour.packages.join(',')}`,
      `--arch=${architecture}`,
      ...(source.keyring ? [`--keyring=${source.keyring}`] : []),
      DEBIAN_SUITE, root, source.uri,
    ]);
  } catch (error) {
    // The temp root (and the log inside it) is about to be removed: keep the log.
    const log = path.join(root, 'debootstrap', 'debootstrap.log');
    if (!(error instanceof BuildError) || !fs.existsSync(log)) throw error;
    const keptLog = path.join(cacheDir, 'debootstrap-failed.log');
    fs.copyFileSync(log, keptLog);
    throw new BuildError(`${error.message} (full log: ${keptLog})`);
  }
  step(`${flavour.name}: debootstrap took ${Math.round((Date.now() - started) / 1000)} s`);
}

function removeEntries(dir: string, shouldRemove: (name: string) => boolean): void {
  for (const name of fs.readdirSync(dir)) {
    if (shouldRemove(name)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

/**
 * Replace a file with a root-owned 0644 one. Unlinks first: the guest's own
 * symlinks must never lead writes onto the host. chmod after writing, as
 * creation modes are cut by the umask.
 */
function replaceFile(file: string, content: string): void {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, content);
  fs.chownSync(file, 0, 0);
  fs.chmodSync(file, 0o644);
}

/** Edit a regular file in place, keeping its owner and mode (e.g. /etc/shadow's root:shadow 0640). */
function editRegularFile(file: string, edit: (content: string) => string): void {
  if (!fs.lstatSync(file).isFile()) throw new BuildError(`expected a regular file in the guest root: ${file}`);
  fs.writeFileSync(file, edit(fs.readFileSync(file, 'utf8')));
}

function truncateFilesBelow(dir: string): void {
  for (const file of walkTree(dir)) {
    if (fs.lstatSync(file).isFile()) fs.truncateSync(file);
  }
}

/**
 * Remove what debootstrap copies from the build host or generates at random,
 * so that the guest does not depend on where or when it was built.
 */
function scrub(root: string): void {
  const at = (guestPath: string) => path.join(root, guestPath);
  // Random per install; virt-sysprep removes them too, `ssh-keygen -A` recreates them.
  if (fs.existsSync(at('etc/ssh'))) removeEntries(at('etc/ssh'), (name) => name.startsWith('ssh_host_'));
  // Copied from the build host.
  replaceFile(at('etc/hostname'), 'localhost\n');
  replaceFile(at('etc/resolv.conf'), '');
  replaceFile(
    at('etc/apt/sources.list'),
    "# Emptied when the test guest was built: it named the build machine's mirror.\n",
  );
  // Indexes of the build machine's mirror (named after it) and downloaded .debs.
  removeEntries(at('var/lib/apt/lists'), (name) => name !== 'partial' && name !== 'lock');
  removeEntries(at('var/cache/apt/archives'), (name) => name.endsWith('.deb'));
  removeEntries(at('var/cache/apt'), (name) => name.endsWith('.bin'));
  // Logs carry build timestamps; ldconfig's aux-cache records host inode numbers and ctimes.
  truncateFilesBelow(at('var/log'));
  fs.rmSync(at('var/cache/ldconfig/aux-cache'), { force: true });
  if (fs.existsSync(at('etc/machine-id'))) replaceFile(at('etc/machine-id'), `${GUEST_MACHINE_ID}\n`);
  // Field 3 of shadow is "last password change", which debootstrap sets to the day of the build.
  for (const file of ['etc/shadow', 'etc/shadow-']) {
    if (!fs.existsSync(at(file))) continue;
    editRegularFile(at(file), (content) =>
      content
        .split('\n')
        .map((line) => {
          const fields = line.split(':');
          if (fields.length < 3 || fields[2] === '') return line;
          fields[2] = String(GUEST_EPOCH_DAY);
          return fields.join(':');
        })
        .join('\n'),
    );
  }
}

/**
 * What `path-exclude` lines in dpkg.cfg.d would have kept out (debootstrap
 * offers no hook to set them before it installs): docs (copyright files
 * kept), man and info pages, translations. dpkg still lists the files, so
 * `dpkg --verify` in the guest reports them missing; nothing else notices.
 */
function slim(root: string): void {
  const at = (guestPath: string) => path.join(root, guestPath);
  for (const dir of ['usr/share/man', 'usr/share/info', 'usr/share/lintian', 'usr/share/linda']) {
    if (fs.existsSync(at(dir))) removeEntries(at(dir), () => true);
  }
  if (fs.existsSync(at('usr/share/locale'))) removeEntries(at('usr/share/locale'), (name) => name !== 'locale.alias');
  if (!fs.existsSync(at('usr/share/doc'))) return;
  for (const pkg of fs.readdirSync(at('usr/share/doc'))) {
    const dir = path.join(at('usr/share/doc'), pkg);
    if (!fs.lstatSync(dir).isDirectory()) continue;
    removeEntries(dir, (name) => name !== 'copyright');
  }
}
