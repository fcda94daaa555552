// Hostile and odd images on the command line, end to end: the shell and
// `guestsh run` refuse what the probe refuses (one line, non-zero exit,
// nothing beside the image, no appliance booted); --allow-backing follows
// what the user vouches for, and then the guest does read the backing file's
// bytes, which is why it is refused without it; file names starting with '-'
// are file names to every tool they reach.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { txFiles } from '../src/runtime/session/transaction.js';
import { CLI, ext4Image, isolatedTmpdir, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

const imgs = join(tmp.dir, 'imgs');
const host = join(tmp.dir, 'host');
mkdirSync(imgs);
mkdirSync(host);
// A secret the guest must not see: any host file a qcow2 can name.
const SECRET = 'api-token: 7f3c9a1e-secret-0042\n';
const secret = join(host, 'credentials');
writeFileSync(secret, SECRET);
truncateSync(secret, 1024 * 1024);
const qemuImg = (...args: string[]): void => void execFileSync('qemu-img', args, { stdio: 'pipe' });

/** The CLI from `cwd` (default: the images' directory). */
function guestsh(args: string[], cwd = imgs): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { cwd, timeout: scaled(240_000) }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

function nothingBeside(img: string): boolean {
  const f = txFiles(img);
  return !existsSync(f.lock) && !existsSync(f.overlay) && !existsSync(f.journal);
}

const RECIPE = join(tmp.dir, 'touch.gfs.ts');
writeFileSync(
  RECIPE,
  "export default async ({ g }: any) => {\n  await g.mount('/dev/sda', '/');\n  await g.write('/g', `from a recipe, after ${await g.cat('/f')}`);\n};\n",
);

describe('backing files on the command line', () => {
  const evil = join(imgs, 'evil.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', secret, '-F', 'raw', evil, '1M');

  it('a qcow2 backed by a host file is refused by the shell and by run before anything boots; --allow-backing follows it', async () => {
    const shell = await guestsh(['--ro', '-a', evil, 'run', ':', 'pread-device', '/dev/sda', String(SECRET.length), '0']);
    expect(shell.code).toBe(4);
    expect(shell.stderr).toBe(
      `guestsh: error: disk image '${evil}' has a backing file outside its directory ('${secret}'), which the guest would read: refused (give --allow-backing to follow it)\n`,
    );
    expect(shell.stdout).toBe('');
    const run = await guestsh(['run', '-a', evil, RECIPE]);
    expect(run.code).toBe(4);
    // run reports a failure on stderr, as every guestsh error.
    expect(run.stderr).toContain(`disk image '${evil}' has a backing file ('${secret}'): recipes open images without one`);
    expect(nothingBeside(evil)).toBe(true);

    // What the refusal prevents: followed, the host file is the guest's disk.
    const followed = await guestsh(['--allow-backing', '--ro', '-a', evil, 'run', ':', 'pread-device', '/dev/sda', String(SECRET.length), '0']);
    // Notices (a first launch builds and saves the appliance) may appear; errors may not.
    expect(followed.stderr).not.toMatch(/error/i);
    expect(followed.stdout).toBe(SECRET);
    expect(nothingBeside(evil)).toBe(true);
  });

  it('a backing file in the image directory: the shell follows it, run only with --allow-backing, and a commit writes the top image only', async () => {
    const base = ext4Image(join(imgs, 'base.img'), 16, { f: 'the base' });
    const child = join(imgs, 'child.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.img', '-F', 'raw', child);
    const baseHash = await sha256(base);
    const cat = await guestsh(['--ro', '-a', child, '-m', '/dev/sda', 'cat', '/f']);
    expect(cat.stdout).toBe('the base\n');
    const refused = await guestsh(['run', '-a', child, RECIPE]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain("has a backing file ('base.img'): recipes open images without one (give --allow-backing to follow it)");
    const run = await guestsh(['run', '--allow-backing', '-a', child, RECIPE]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('changes committed');
    expect(await sha256(base)).toBe(baseHash);
    expect((await guestsh(['--ro', '-a', child, '-m', '/dev/sda', 'cat', '/g'])).stdout).toBe('from a recipe, after the base\n');
    expect(nothingBeside(child)).toBe(true);
  });

  it('a backing chain that loops, a qcow2 whose data file is a host file and a FIFO fail at once with one line', async () => {
    const a = join(imgs, 'a.qcow2');
    const b = join(imgs, 'b.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', a, '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', 'a.qcow2', '-F', 'qcow2', b, '1M');
    qemuImg('rebase', '-q', '-u', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', a);
    const loop = await guestsh(['-a', a, 'run', ':', 'list-devices']);
    expect(loop.code).toBe(4);
    expect(loop.stderr).toBe(`guestsh: error: disk image '${a}' has a backing chain that loops: '${a}' → '${b}' → '${a}'\n`);
    expect(nothingBeside(a)).toBe(true);

    const data = join(imgs, 'data.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(imgs, 'scratch.raw')},data_file_raw=on`, data, '1M');
    qemuImg('amend', '-q', '-f', 'qcow2', '-o', `data_file=${secret}`, data);
    const external = await guestsh(['-a', data, 'run', ':', 'list-devices']);
    expect(external.code).toBe(4);
    expect(external.stderr).toContain(`keeps its data in an external file outside its directory ('${secret}'), which a commit would write`);
    expect(nothingBeside(data)).toBe(true);

    const fifo = join(imgs, 'fifo.img');
    execFileSync('mkfifo', [fifo]);
    for (const args of [['-a', fifo, 'run', ':', 'list-devices'], ['run', '-a', fifo, RECIPE]]) {
      const r = await guestsh(args);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toContain(`disk image '${fifo}' is a FIFO, not a disk image file or block device`);
    }
  });
});

describe('file names starting with -', () => {
  it('-a -dash.img opens ./-dash.img in the shell and in run, and its commit lands there', async () => {
    ext4Image(join(imgs, '-dash.img'), 16, { f: 'dash' });
    const list = await guestsh(['--format=raw', '-a', '-dash.img', 'run', ':', 'list-devices']);
    expect(list.stderr).not.toMatch(/error/i);
    expect(list.stdout).toBe('/dev/sda\n');
    const run = await guestsh(['run', '--format', 'raw', '-a', '-dash.img', RECIPE]);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    expect((await guestsh(['--format=raw', '--ro', '-a', '-dash.img', '-m', '/dev/sda', 'cat', '/g'])).stdout).toBe('from a recipe, after dash\n');
    expect(nothingBeside(join(imgs, '-dash.img'))).toBe(true);
  });
});
