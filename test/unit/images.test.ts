// Hostile and odd images, checked by the probe before qemu opens anything
// (real qemu-img, no appliance): backing files and external data files that
// name host files, backing chains that loop, files that are no disk (a FIFO
// would block qemu-img for ever), and file names that look like options.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDisk, createOverlay, probeImage } from '../../src/runtime/qemu/img.js';
import { UsageError } from '../../src/runtime/errors.js';
import { Session } from '../../src/runtime/session/session.js';
import { txFiles } from '../../src/runtime/session/transaction.js';

const root = mkdtempSync(join(tmpdir(), 'guestsh-images-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The user's images live in imgs/; host/ stands for the rest of the host.
const imgs = join(root, 'imgs');
const host = join(root, 'host');
mkdirSync(imgs);
mkdirSync(host);
const SECRET = 'root:$6$k3Y$1J0hP0Sq9:19000:0:99999:7:::\n';
const secret = join(host, 'shadow');
writeFileSync(secret, SECRET);
truncateSync(secret, 1024 * 1024);

const img = (...args: string[]): void => void execFileSync('qemu-img', args, { stdio: 'pipe' });
function qcow2(name: string, backing?: { file: string; format: string }): string {
  const path = join(imgs, name);
  if (backing) img('create', '-q', '-f', 'qcow2', '-u', '-b', backing.file, '-F', backing.format, path, '1M');
  else img('create', '-q', '-f', 'qcow2', path, '1M');
  return path;
}
/** Points `image`'s backing file at `file` without opening it (how a loop is made). */
const rebase = (image: string, file: string): void => img('rebase', '-q', '-u', '-f', 'qcow2', '-b', file, '-F', 'qcow2', image);

async function refusal(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UsageError);
  const msg = (e as Error).message;
  expect(msg).not.toContain('\n');
  return msg;
}

describe('backing files', () => {
  const evil = qcow2('evil.qcow2', { file: secret, format: 'raw' });
  const relative = qcow2('relative.qcow2', { file: '../host/shadow', format: 'raw' });
  // A name in the image's directory that leads out of it.
  symlinkSync(secret, join(imgs, 'base.raw'));
  const sneaky = qcow2('sneaky.qcow2', { file: 'base.raw', format: 'raw' });
  const base = qcow2('base.qcow2');
  const child = qcow2('child.qcow2', { file: 'base.qcow2', format: 'qcow2' });
  const json = qcow2('json.qcow2', { file: `json:{"driver":"file","filename":"${secret}"}`, format: 'raw' });

  it('a host file outside the image directory is refused by default, whichever way it is named', async () => {
    expect(await refusal(probeImage(evil))).toBe(
      `disk image '${evil}' has a backing file outside its directory ('${secret}'), which the guest would read: refused (give --allow-backing to follow it)`,
    );
    expect(await refusal(probeImage(relative))).toContain("has a backing file outside its directory ('../host/shadow')");
    expect(await refusal(probeImage(sneaky))).toContain("has a backing file outside its directory ('base.raw')");
    expect(await refusal(probeImage(json))).toContain('has a backing file that is not a local file');
    if (existsSync('/etc/shadow')) {
      const shadow = qcow2('shadow.qcow2', { file: '/etc/shadow', format: 'raw' });
      expect(await refusal(probeImage(shadow))).toContain("has a backing file outside its directory ('/etc/shadow')");
    }
  });

  it('a backing file in the image directory is followed; recipes (none) refuse any; --allow-backing (any) follows all', async () => {
    expect(await probeImage(child)).toEqual({ format: 'qcow2', virtualSize: 1024 * 1024 });
    expect(await refusal(probeImage(child, undefined, 'none'))).toBe(
      `disk image '${child}' has a backing file ('base.qcow2'): recipes open images without one (give --allow-backing to follow it)`,
    );
    expect(await refusal(probeImage(evil, undefined, 'none'))).toContain(`has a backing file ('${secret}')`);
    for (const p of [evil, relative, sneaky, json]) expect((await probeImage(p, undefined, 'any')).format).toBe('qcow2');
  });

  it('the session refuses before it locks anything, under its settings', async () => {
    const s = new Session({ env: {} });
    expect(await refusal(s.addDrive(evil))).toContain('outside its directory');
    expect(existsSync(txFiles(evil).lock)).toBe(false);
    expect(existsSync(txFiles(evil).overlay)).toBe(false);
    s.settings.backing = 'none';
    expect(await refusal(s.addDrive(child, { readonly: true }))).toContain('recipes open images without one');
    await s.close();
  });
});

describe('backing chains that loop', () => {
  const self = qcow2('self.qcow2');
  rebase(self, 'self.qcow2');
  const a = qcow2('a.qcow2');
  const b = qcow2('b.qcow2', { file: 'a.qcow2', format: 'qcow2' });
  rebase(a, 'b.qcow2');

  it('fail at once with the chain, under every policy that follows backing files', async () => {
    for (const policy of ['own-directory', 'any'] as const) {
      expect(await refusal(probeImage(self, undefined, policy))).toBe(`disk image '${self}' has a backing chain that loops: '${self}' → '${self}'`);
      expect(await refusal(probeImage(a, undefined, policy))).toBe(`disk image '${a}' has a backing chain that loops: '${a}' → '${b}' → '${a}'`);
    }
    expect(await refusal(probeImage(self, undefined, 'none'))).toContain('loops');
    expect(await refusal(probeImage(b, undefined, 'none'))).toContain('recipes open images without one');
  });

  it('a read-write drive over a loop fails at once (its overlay would never be created) and leaves nothing', async () => {
    const s = new Session({ env: {} });
    expect(await refusal(s.addDrive(a))).toContain('loops');
    expect(existsSync(txFiles(a).lock)).toBe(false);
    expect(existsSync(txFiles(a).overlay)).toBe(false);
    await s.close();
  });
});

describe('external data files', () => {
  // Made over a scratch file, then pointed at the host's file without touching it (amend only rewrites the header).
  const outside = join(imgs, 'outside.qcow2');
  img('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(imgs, 'scratch.raw')},data_file_raw=on`, outside, '1M');
  img('amend', '-q', '-f', 'qcow2', '-o', `data_file=${secret}`, outside);
  const inside = join(imgs, 'inside.qcow2');
  img('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(imgs, 'inside.data')},data_file_raw=on`, inside, '1M');

  it('outside the image directory are refused (a commit would write them), in recipes always, with --allow-backing never', async () => {
    expect(await refusal(probeImage(outside))).toBe(
      `disk image '${outside}' keeps its data in an external file outside its directory ('${secret}'), which a commit would write: refused (give --allow-backing to accept it)`,
    );
    expect(await refusal(probeImage(outside, undefined, 'none'))).toContain('recipes refuse such images');
    expect(await refusal(probeImage(inside, undefined, 'none'))).toContain('recipes refuse such images');
    expect((await probeImage(inside)).format).toBe('qcow2');
    expect((await probeImage(outside, undefined, 'any')).format).toBe('qcow2');
    // The probe read the host file's name, never the file.
    expect(execFileSync('head', ['-c', String(SECRET.length), secret], { encoding: 'utf8' })).toBe(SECRET);
  });
});

describe('files that are no disk image', () => {
  const fifo = join(imgs, 'fifo.img');
  execFileSync('mkfifo', [fifo]);
  const fifoBacked = qcow2('fifo-backed.qcow2', { file: 'fifo.img', format: 'raw' });

  it('a FIFO, a character device other than /dev/null or a directory is refused at once, as an image, a backing file and to disk_format', async () => {
    expect(await refusal(probeImage(fifo))).toBe(`disk image '${fifo}' is a FIFO, not a disk image file or block device`);
    expect(await refusal(probeImage('/dev/zero'))).toBe("disk image '/dev/zero' is a character device, not a disk image file or block device");
    // The one character device let through: guestfish's `-a /dev/null`, an empty disk.
    expect((await probeImage('/dev/null')).virtualSize).toBe(0);
    expect(await refusal(probeImage(imgs))).toBe(`disk image '${imgs}' is a directory, not a disk image file or block device`);
    expect(await refusal(probeImage(fifoBacked))).toBe(
      `the backing file 'fifo.img' of disk image '${fifoBacked}' is a FIFO, not a disk image file or block device`,
    );
    const s = new Session({ env: {} });
    expect(await refusal(s.addDrive(fifo, { format: 'raw' }))).toContain('is a FIFO');
    expect(await refusal(s.call('disk_format', [fifo]))).toBe(`disk_format: ${fifo} is a FIFO, not a disk image file or block device`);
    await s.close();
  });
});

describe('file names starting with -', () => {
  it('are file names to qemu-img: probed, created, overlaid, asked about', async () => {
    const cwd = process.cwd();
    process.chdir(imgs);
    try {
      await createDisk('-dash.img', 'raw', 1024 * 1024);
      expect(existsSync(join(imgs, '-dash.img'))).toBe(true);
      expect(await probeImage('-dash.img')).toEqual({ format: 'raw', virtualSize: 1024 * 1024 });
      await createOverlay('-dash.img', 'raw', '-dash.qcow2');
      expect(await probeImage('-dash.qcow2')).toEqual({ format: 'qcow2', virtualSize: 1024 * 1024 });
      const s = new Session({ env: {} });
      expect(await s.call('disk_format', ['-dash.qcow2'])).toBe('qcow2');
      expect(await s.call('disk_has_backing_file', ['-dash.qcow2'])).toBe(true);
      await s.close();
    } finally {
      process.chdir(cwd);
    }
  });
});
