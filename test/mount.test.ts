// `guestsh mount` through the real kernel FUSE: the Debian test guest's tree
// seen through the mount against the same listing made inside the
// appliance, writes committed at the unmount, --discard, --ro, Ctrl-C, a
// busy mountpoint, kill -9 (the watchdog detaches the mount), a corrupted
// ext4 (errors as errno, only the fuse entry in /proc/mounts), and the
// API's mount_local / mount_local_run / umount_local.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureImage } from '../testdata/index.js';
import { openImages } from '../src/runtime/open/open.js';
import { Session } from '../src/runtime/session/session.js';
import { CLI, ext4Image, guestsh, isAlive, isolatedTmpdir, qemuUnder, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
let base = '';
beforeAll(async () => {
  base = await ensureImage('debian');
}, scaled(600_000));
afterAll(() => {
  const stillMounted = mountLines().filter((l) => l.includes(tmp.dir));
  for (const l of stillMounted) execFileSync('umount', ['-l', l.split(' ')[1]!]);
  const left = tmp.leftovers();
  tmp.restore();
  expect(stillMounted).toEqual([]);
  expect(left).toEqual([]);
});

const mountLines = (): string[] => readFileSync('/proc/self/mounts', 'utf8').split('\n').filter(Boolean);
const isMounted = (mnt: string): boolean => mountLines().some((l) => l.split(' ')[1] === mnt);

function sh(cmd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', cmd], { timeout: scaled(180_000), maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

async function until(what: string, cond: () => boolean, ms = scaled(60_000)): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Mounted {
  proc: ChildProcess;
  stderr: () => string;
  exit: Promise<number | string>;
}

/** Starts `guestsh mount ARGS MNT` and waits until MNT is mounted. */
async function startMount(args: string[], mnt: string): Promise<Mounted> {
  mkdirSync(mnt, { recursive: true });
  const proc = spawn('node', [CLI, 'mount', ...args, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig!)));
  let exited = false;
  void exit.then(() => (exited = true));
  await until('the mount', () => isMounted(mnt) || exited, scaled(240_000));
  if (!isMounted(mnt)) throw new Error(`guestsh mount exited: ${await exit}: ${err}`);
  return { proc, stderr: () => err, exit };
}

/** The pid that serves a guestsh mount (its /proc/mounts source). */
const serverOf = (mnt: string): number => Number(mountLines().find((l) => l.split(' ')[1] === mnt)!.split(' ')[0]!.split(':')[1]);

const FIND_FORMAT = `-printf '%P\\t%y\\t%m\\t%U\\t%G\\t%s\\t%l\\n'`;
/** dev, proc, sys: the appliance binds its own over the guest's while it runs a guest command, so both sides leave them out. */
const prunedFind = (root: string): string => {
  const at = root === '/' ? '' : root;
  return `find ${root} \\( -path ${at}/proc -o -path ${at}/sys -o -path ${at}/dev \\) -prune -o ${FIND_FORMAT}`;
};

/** name → "type mode uid gid size target", directory sizes left out (they are the filesystem's bookkeeping). */
function listing(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [name, type, mode, uid, gid, size, target] = line.split('\t');
    if (!name) continue;
    m.set(name, [type, mode, uid, gid, type === 'd' ? '-' : size, target].join(' '));
  }
  return m;
}

const SUMS = (root: string): string =>
  `cd ${root} && find . \\( -path ./proc -o -path ./sys -o -path ./dev \\) -prune -o -type f -print0 | sort -z | xargs -0 sha256sum`;

/** The listing and checksums of every file, made inside the appliance by the guest's own find and sha256sum. */
async function inAppliance(img: string): Promise<{ list: Map<string, string>; sums: string }> {
  const s = new Session();
  try {
    await openImages(s, { drives: [{ path: img, format: 'raw' }], readonly: true, inspect: true });
    const list = listing(await s.g.sh(prunedFind('/')));
    const sums = await s.g.sh(`LC_ALL=C; export LC_ALL; ${SUMS('/')}`);
    return { list, sums };
  } finally {
    await s.close();
  }
}

describe('guestsh mount', () => {
  it('-i shows the guest as the appliance sees it; cp -a, rm, mv, ln -s, chmod, truncate are committed at the unmount, exactly', async () => {
    const img = join(tmp.dir, 'debian.img');
    execFileSync('cp', ['--sparse=always', base, img]);
    const before = await inAppliance(img);
    expect(before.list.size).toBeGreaterThan(1000);
    for (const f of ['etc/motd', 'etc/issue.net', 'etc/issue', 'etc/hostname', 'srv']) expect(before.list.has(f)).toBe(true);

    const mnt = join(tmp.dir, 'mnt-debian');
    const m = await startMount(['--format=raw', '-a', img, '-i'], mnt);
    const seen = await sh(prunedFind(mnt));
    expect(seen.code).toBe(0);
    expect(listing(seen.stdout)).toEqual(before.list);
    const sums = await sh(SUMS(mnt));
    expect(sums.code).toBe(0);
    expect(sums.stdout).toBe(before.sums);

    const hostnameBefore = readFileSync(join(mnt, 'etc/hostname'));
    // A host tree to copy in: a file, a binary in a subdirectory, a relative symlink, modes.
    const src = join(tmp.dir, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'sub', 'b.bin'), randomBytes(300_000));
    symlinkSync('../a.txt', join(src, 'sub', 'l'));
    chmodSync(join(src, 'a.txt'), 0o600);
    chmodSync(join(src, 'sub'), 0o750);
    const edits = await sh(
      [
        `cp -a ${src} ${mnt}/srv/copied`,
        `rm ${mnt}/etc/motd`,
        `mv ${mnt}/etc/issue.net ${mnt}/etc/issue.net.moved`,
        `ln -s /etc/hostname ${mnt}/root/hostname-link`,
        `chmod 0600 ${mnt}/etc/issue`,
        `truncate -s 3 ${mnt}/etc/hostname`,
      ].join(' && '),
    );
    expect(edits).toMatchObject({ code: 0, stderr: '' });
    const copiedSeen = await sh(`cd ${mnt}/srv/copied && sha256sum a.txt sub/b.bin`);
    const copiedHost = await sh(`cd ${src} && sha256sum a.txt sub/b.bin`);
    expect(copiedSeen.stdout).toBe(copiedHost.stdout);

    const un = await guestsh(['umount', mnt]);
    expect(un).toMatchObject({ code: 0, stderr: '' });
    // umount waits for the commit: the server has exited by now.
    expect(isAlive(m.proc.pid!)).toBe(false);
    expect(await m.exit).toBe(0);
    expect(isMounted(mnt)).toBe(false);

    const expected = new Map(before.list);
    expected.delete('etc/motd');
    expected.set('etc/issue.net.moved', expected.get('etc/issue.net')!);
    expected.delete('etc/issue.net');
    expected.set('root/hostname-link', 'l 777 0 0 13 /etc/hostname');
    expected.set('etc/issue', expected.get('etc/issue')!.replace(/^f \d+/, 'f 600'));
    expected.set('etc/hostname', expected.get('etc/hostname')!.replace(/^(f \d+ \d+ \d+) \d+/, '$1 3'));
    for (const [name, rec] of listing((await sh(`find ${src} ${FIND_FORMAT}`)).stdout)) expected.set(`srv/copied/${name}`, rec);
    expected.set('srv/copied', listing((await sh(`find ${src} -maxdepth 0 -printf 'x\\t%y\\t%m\\t%U\\t%G\\t%s\\t%l\\n'`)).stdout).get('x')!);
    const after = await inAppliance(img);
    expect(after.list).toEqual(expected);
    // The contents: the truncated file is its first 3 bytes, the copied files are the host's, everything else as before.
    const sumOf = (sums: string, file: string): string | undefined => sums.split('\n').find((l) => l.endsWith(`  ./${file}`))?.split(' ')[0];
    expect(sumOf(after.sums, 'etc/hostname')).toBe(createHash('sha256').update(hostnameBefore.subarray(0, 3)).digest('hex'));
    expect(sumOf(after.sums, 'srv/copied/sub/b.bin')).toBe(sumOf(copiedHost.stdout.replace(/  /g, '  ./'), 'sub/b.bin'));
    const unchanged = (sums: string): string[] =>
      sums.split('\n').filter((l) => l && !/ \.\/(etc\/(motd|issue\.net|issue\.net\.moved|hostname)|srv\/copied\/.*)$/.test(l));
    expect(unchanged(after.sums)).toEqual(unchanged(before.sums));
  }, scaled(900_000));
});
