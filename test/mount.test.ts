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
/** Every mount a test started: a failing test's are ended before the leak checks. */
const started: Mounted[] = [];
afterAll(async () => {
  for (const m of started) if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL');
  await Promise.all(started.map((m) => m.exit));
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
  started.push({ proc, stderr: () => err, exit });
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

  it('--discard leaves the image byte-identical, --ro refuses writes with EROFS, a busy mountpoint says what to do, Ctrl-C unmounts and commits', async () => {
    const img = ext4Image(join(tmp.dir, 'small.img'), 32, { 'f.txt': 'x\n' });
    const h0 = await sha256(img);
    const mnt = join(tmp.dir, 'mnt-small');

    let m = await startMount(['--format=raw', '-a', img, '-m', '/dev/sda', '--discard'], mnt);
    expect(await sh(`echo new > ${mnt}/new.txt && rm ${mnt}/f.txt && mkdir ${mnt}/d && touch ${mnt}/d/x`)).toMatchObject({ code: 0, stderr: '' });
    // guestfsd's errno, through to the host's tools.
    expect((await sh(`rmdir ${mnt}/d`)).stderr).toMatch(/Directory not empty/);
    expect((await sh(`cat ${mnt}/nothing-here`)).stderr).toMatch(/No such file or directory/);
    expect((await sh(`getfattr -n user.nothing ${mnt}/new.txt`)).stderr).toMatch(/No such attribute/);
    expect(await sh(`setfattr -n user.k -v v1 ${mnt}/new.txt && getfattr --only-values -n user.k ${mnt}/new.txt`)).toMatchObject({ code: 0, stdout: 'v1' });
    expect((await guestsh(['umount', mnt])).code).toBe(0);
    expect(await m.exit).toBe(0);
    expect(await sha256(img)).toBe(h0);

    m = await startMount(['--format=raw', '-a', img, '-m', '/dev/sda', '--ro'], mnt);
    for (const write of [`touch ${mnt}/new.txt`, `echo y >> ${mnt}/f.txt`, `rm ${mnt}/f.txt`, `mkdir ${mnt}/d`, `chmod 0 ${mnt}/f.txt`]) {
      const r = await sh(write);
      expect(r.code, write).not.toBe(0);
      expect(r.stderr, write).toMatch(/Read-only file system/);
    }
    expect(readFileSync(join(mnt, 'f.txt'), 'utf8')).toBe('x\n');
    // Busy: a process sits in the mount; the unmount refuses, naming what to do, and works once it has gone.
    const holder = spawn('sleep', ['600'], { cwd: mnt, stdio: 'ignore' });
    const busy = await guestsh(['umount', mnt]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/^guestsh: error: .* is busy: .*fuser -vm .*; end it, then unmount again\n$/);
    expect(isMounted(mnt)).toBe(true);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('exit', r));
    expect((await guestsh(['umount', mnt])).code).toBe(0);
    expect(await m.exit).toBe(0);
    expect(await sha256(img)).toBe(h0);

    // Ctrl-C: the mount ends as an unmount does, and the write is committed.
    m = await startMount(['--format=raw', '-a', img, '-m', '/dev/sda'], mnt);
    writeFileSync(join(mnt, 'kept.txt'), 'kept\n');
    process.kill(serverOf(mnt), 'SIGINT');
    expect(await m.exit).toBe(130);
    expect(isMounted(mnt)).toBe(false);
    const check = await guestsh(['--format=raw', '--ro', '-a', img, '-m', '/dev/sda', 'ls', '/']);
    expect(check.stdout).toBe('f.txt\nkept.txt\nlost+found\n');
  }, scaled(600_000));

  it('kill -9 while mounted: the image is unchanged, the watchdog detaches the mount, no qemu is left', async () => {
    const img = ext4Image(join(tmp.dir, 'kill.img'), 32, { 'f.txt': 'x\n' });
    const h0 = await sha256(img);
    const mnt = join(tmp.dir, 'mnt-kill');
    const m = await startMount(['--format=raw', '-a', img, '-m', '/dev/sda'], mnt);
    expect(await sh(`echo lost > ${mnt}/new.txt && rm ${mnt}/f.txt`)).toMatchObject({ code: 0 });
    const server = serverOf(mnt);
    expect(qemuUnder(tmp.dir).length).toBeGreaterThan(0);
    process.kill(server, 'SIGKILL');
    if (m.proc.pid !== server && isAlive(m.proc.pid!)) m.proc.kill('SIGKILL');
    await m.exit;
    await until('the watchdog to detach the mount', () => !isMounted(mnt));
    await until('qemu to be reaped', () => qemuUnder(tmp.dir).length === 0);
    expect(await sha256(img)).toBe(h0);
    // The next open removes the abandoned overlay and sees the image as it was.
    const check = await guestsh(['--format=raw', '--ro', '-a', img, '-m', '/dev/sda', 'ls', '/']);
    expect(check.stdout).toBe('f.txt\nlost+found\n');
    expect((await guestsh(['recover', img])).code).toBe(0);
  }, scaled(600_000));

  it('a corrupted ext4, read-only: errors come back as errno, nothing hangs, only the fuse entry is mounted on the host', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`d/file-${i}.txt`] = `file ${i}\n`.repeat(50);
    files['ok.txt'] = 'fine\n';
    const img = ext4Image(join(tmp.dir, 'corrupt.img'), 32, files);
    // Garbage over the inodes of file-1 … file-9 (the directory itself stays sound): the appliance's ext4 finds them bad.
    const blockSize = Number(/Block size:\s+(\d+)/.exec(execFileSync('dumpe2fs', ['-h', img], { stdio: ['ignore', 'pipe', 'ignore'] }).toString())![1]);
    for (let i = 1; i < 10; i++) {
      const where = execFileSync('debugfs', ['-R', `imap /d/file-${i}.txt`, img], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      const [, block, offset] = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(where)!;
      execFileSync('dd', [`of=${img}`, 'bs=1', `seek=${Number(block) * blockSize + Number(offset)}`, 'count=256', 'conv=notrunc', 'status=none'], { input: randomBytes(256) });
    }
    const h0 = await sha256(img);
    const mnt = join(tmp.dir, 'mnt-corrupt');
    mkdirSync(mnt, { recursive: true });
    const before = mountLines();
    const m = await startMount(['--format=raw', '-a', img, '-m', '/dev/sda', '--ro'], mnt);
    const during = mountLines();
    expect(during.filter((l) => !before.includes(l))).toEqual([expect.stringMatching(new RegExp(`^guestsh:\\d+ ${mnt} fuse\\.guestsh ro,`))]);
    expect(before.filter((l) => !during.includes(l))).toEqual([]);
    expect(readFileSync(join(mnt, 'ok.txt'), 'utf8')).toBe('fine\n');
    // The appliance's errno, as the host's tools print it (EBADMSG: a bad inode checksum; EUCLEAN or EIO: other damage).
    const damaged = /: (Bad message|Structure needs cleaning|Input\/output error)$/m;
    const ls = await sh(`ls -l ${mnt}/d`);
    expect(ls.code).not.toBe(0);
    expect(ls.stderr.split('\n').filter(Boolean).every((l) => damaged.test(l))).toBe(true);
    expect(ls.stdout).toContain('file-10.txt');
    const cat = await sh(`cat ${mnt}/d/file-1.txt`);
    expect(cat.code).not.toBe(0);
    expect(cat.stderr).toMatch(damaged);
    expect(readFileSync(join(mnt, 'd', 'file-10.txt'), 'utf8')).toBe('file 10\n'.repeat(50));
    expect((await guestsh(['umount', mnt])).code).toBe(0);
    expect(await m.exit).toBe(0);
    expect(mountLines()).toEqual(before);
    expect(await sha256(img)).toBe(h0);
  }, scaled(600_000));

  it('the API: mount_local, mount_local_run until umount_local, the writes in the session', async () => {
    const img = ext4Image(join(tmp.dir, 'api.img'), 32, { 'f.txt': 'x\n' });
    const mnt = join(tmp.dir, 'mnt-api');
    mkdirSync(mnt, { recursive: true });
    const s = new Session();
    try {
      await s.addDrive(img, { format: 'raw' });
      await s.launch();
      await s.g.mount('/dev/sda', '/');
      await expect(s.g.umountLocal()).rejects.toThrow(/umount_local: no filesystem is mounted locally/);
      await s.g.mountLocal(mnt, { cachetimeout: 5 });
      await expect(s.g.mountLocal(mnt)).rejects.toThrow(/is mounted already/);
      const run = s.g.mountLocalRun();
      // The server is this process: the files are touched from another one.
      expect(await sh(`cat ${mnt}/f.txt && echo api > ${mnt}/api.txt && ln -s f.txt ${mnt}/l && stat -c %F ${mnt}/l`)).toMatchObject({
        code: 0,
        stdout: 'x\nsymbolic link\n',
      });
      await s.g.umountLocal({ retry: true });
      await run;
      expect(isMounted(mnt)).toBe(false);
      expect(await s.g.cat('/api.txt')).toBe('api\n');
      expect(await s.g.readlink('/l')).toBe('f.txt');
      // close() unmounts a mount left behind.
      await s.g.mountLocal(mnt, { readonly: true });
      expect(isMounted(mnt)).toBe(true);
    } finally {
      await s.close();
    }
    expect(isMounted(mnt)).toBe(false);
  }, scaled(300_000));
});

