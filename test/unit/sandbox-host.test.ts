// The host side of sandboxed calls, without a VM: the confined walk
// (host-fs.ts) refuses `..`, symbolic links anywhere on the way, device
// nodes, FIFOs and sockets, and never blocks on a FIFO; the tar code
// (host-tar.ts) reads what GNU tar writes and the other way round, and
// refuses hostile archives (`..` members, a member through a link the archive
// planted, a file over a planted link). Real files, real GNU tar.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostRoot, locate, openForRead, openForWrite, openRoot, readChunks } from '../../src/runtime/recipe/host-fs.js';
import { packTree, TarExtractor } from '../../src/runtime/recipe/host-tar.js';

const base = mkdtempSync(join(tmpdir(), 'guestsh-hostfs-'));
const root = join(base, 'root');
const outside = join(base, 'outside');
const R: HostRoot = { real: root, given: root };
const isRoot = process.getuid?.() === 0;
let server: Server;

beforeAll(async () => {
  mkdirSync(join(root, 'sub', 'deep'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), 'outside\n');
  writeFileSync(join(root, 'file.txt'), 'inside\n');
  writeFileSync(join(root, 'sub', 'deep', 'f'), 'deep\n');
  symlinkSync(join(outside, 'secret'), join(root, 'link-to-secret'));
  symlinkSync(outside, join(root, 'link-to-dir'));
  symlinkSync('file.txt', join(root, 'link-inside'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  if (isRoot) {
    execFileSync('mknod', [join(root, 'zero'), 'c', '1', '5']);
    execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
    execFileSync('mknod', [join(root, 'loop'), 'b', '7', '0']);
  }
  linkSync(join(outside, 'secret'), join(root, 'hardlink'));
  server = createServer();
  await new Promise<void>((r) => server.listen(join(root, 'sock'), r));
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(base, { recursive: true, force: true });
});

const here = (p: string) => locate(p, R, [R])!;
const signal = new AbortController().signal;

async function readAll(p: string): Promise<string> {
  const { fh } = await openForRead(here(p), 'upload', false);
  try {
    const chunks: Buffer[] = [];
    for await (const c of readChunks(fh, signal)) chunks.push(c);
    return Buffer.concat(chunks).toString();
  } finally {
    await fh.close();
  }
}

describe('confined paths', () => {
  it('a path that leaves the allowed directory has no location', () => {
    expect(locate('../outside/secret', R, [R])).toBeNull();
    expect(locate(join(outside, 'secret'), R, [R])).toBeNull();
    expect(locate('sub/../../outside', R, [R])).toBeNull();
    expect(locate('sub/../file.txt', R, [R])).toMatchObject({ parts: ['file.txt'] });
  });

  it('takes the innermost allowed directory that holds a path', () => {
    const inner: HostRoot = { real: join(root, 'sub'), given: join(root, 'sub') };
    expect(locate(join(root, 'sub', 'deep', 'f'), R, [R, inner])).toMatchObject({ root: inner, parts: ['deep', 'f'] });
  });

  it('reads a regular file inside', async () => {
    expect(await readAll('sub/deep/f')).toBe('deep\n');
  });

  it('refuses a symbolic link as the file, even one pointing inside', async () => {
    await expect(readAll('link-to-secret')).rejects.toThrow(/upload: host path 'link-to-secret' is a symbolic link/);
    await expect(readAll('link-inside')).rejects.toThrow(/is a symbolic link/);
  });

  it('refuses a path that leads through a symbolic link to a directory', async () => {
    await expect(readAll('link-to-dir/secret')).rejects.toThrow(/leads through 'link-to-dir', which is a symbolic link/);
  });

  it('refuses a FIFO without blocking on it', async () => {
    await expect(readAll('fifo')).rejects.toThrow(/host path 'fifo' is a FIFO; recipes read only regular files/);
    await expect(openForWrite(here('fifo'), 'download')).rejects.toThrow(/is a FIFO; recipes write only regular files/);
  });

  it('refuses a socket', async () => {
    await expect(readAll('sock')).rejects.toThrow(/is a socket/);
    await expect(openForWrite(here('sock'), 'download')).rejects.toThrow(/is a socket/);
  });

  it.runIf(isRoot)('refuses character and block devices, reading and writing', async () => {
    await expect(readAll('zero')).rejects.toThrow(/is a character device/);
    await expect(readAll('loop')).rejects.toThrow(/is a block device/);
    await expect(openForWrite(here('null'), 'download')).rejects.toThrow(/is a character device; recipes write only regular files/);
    expect(lstatSync(join(root, 'null')).isCharacterDevice()).toBe(true);
  });

  it('writes through no symbolic link: a planted one is refused and its target left alone', async () => {
    await expect(openForWrite(here('link-to-secret'), 'download')).rejects.toThrow(/is a symbolic link/);
    await expect(openForWrite(here('link-to-dir/new'), 'download')).rejects.toThrow(/leads through 'link-to-dir'/);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('outside\n');
    expect(existsSync(join(outside, 'new'))).toBe(false);
  });

  it('refuses to write a file that has other hard links', async () => {
    await expect(openForWrite(here('hardlink'), 'download')).rejects.toThrow(/has other hard links/);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('outside\n');
  });

  it('writes a new file, and empties an existing one first', async () => {
    for (const text of ['first, longer\n', 'second\n']) {
      const fh = await openForWrite(here('written.txt'), 'download');
      await fh.write(text);
      await fh.close();
    }
    expect(readFileSync(join(root, 'written.txt'), 'utf8')).toBe('second\n');
  });

  it('stops reading once the signal aborts', async () => {
    const ac = new AbortController();
    const { fh } = await openForRead(here('file.txt'), 'upload', false);
    ac.abort(new Error('stopped'));
    const it = readChunks(fh, ac.signal);
    await expect(it.next()).rejects.toThrow('stopped');
    await fh.close();
  });
});

/** A tree on the host with what copy_in must carry: nested dirs, a long name, a link, an empty file. */
function sampleTree(dir: string): void {
  const long = 'n'.repeat(120);
  mkdirSync(join(dir, 'a', long), { recursive: true });
  writeFileSync(join(dir, 'a', long, 'f.txt'), 'long name\n');
  writeFileSync(join(dir, 'a', 'empty'), '');
  writeFileSync(join(dir, 'a', 'big.bin'), Buffer.alloc(200_000, 7));
  symlinkSync('/etc/passwd', join(dir, 'a', 'abs-link'));
}

async function extract(stream: AsyncIterable<Buffer> | Buffer, into: string): Promise<TarExtractor> {
  mkdirSync(into, { recursive: true });
  const dir = await openRoot({ real: into, given: into });
  const x = new TarExtractor(dir, { action: 'copy_out', shown: 'out', signal });
  try {
    if (Buffer.isBuffer(stream)) {
      // Odd-sized pieces: headers and data cross chunk boundaries.
      for (let i = 0; i < stream.length; i += 777) await x.write(stream.subarray(i, i + 777));
    } else for await (const c of stream) await x.write(c);
    x.end();
    return x;
  } finally {
    await x.close();
    await dir.close();
  }
}

function gnuTar(args: string[]): Buffer {
  return execFileSync('tar', args, { maxBuffer: 64 * 1024 * 1024 });
}

describe('tar streams', () => {
  it('what packTree writes, GNU tar extracts: long names, links stored as links, sizes', async () => {
    const src = join(base, 'pack-src');
    sampleTree(src);
    const chunks: Buffer[] = [];
    for await (const c of packTree(locate('a', { real: src, given: src }, [{ real: src, given: src }])!, 'copy_in', signal)) chunks.push(c);
    const dst = join(base, 'pack-dst');
    mkdirSync(dst);
    execFileSync('tar', ['-xf', '-', '-C', dst], { input: Buffer.concat(chunks) });
    expect(readFileSync(join(dst, 'a', 'n'.repeat(120), 'f.txt'), 'utf8')).toBe('long name\n');
    expect(statSync(join(dst, 'a', 'empty')).size).toBe(0);
    expect(readFileSync(join(dst, 'a', 'big.bin')).equals(Buffer.alloc(200_000, 7))).toBe(true);
    expect(readlinkSync(join(dst, 'a', 'abs-link'))).toBe('/etc/passwd');
  });

  it('packTree refuses a FIFO inside the tree', async () => {
    const src = join(base, 'pack-fifo');
    mkdirSync(join(src, 't'), { recursive: true });
    execFileSync('mkfifo', [join(src, 't', 'p')]);
    const r: HostRoot = { real: src, given: src };
    const drain = async () => {
      for await (const _ of packTree(locate('t', r, [r])!, 'copy_in', signal));
    };
    await expect(drain()).rejects.toThrow(/copy_in: host path 't\/p' is a FIFO/);
  });

  it('extracts what GNU tar writes: dirs, files, links, hard links as copies; special files left out', async () => {
    const src = join(base, 'gnu-src');
    sampleTree(src);
    linkSync(join(src, 'a', 'big.bin'), join(src, 'a', 'hard'));
    execFileSync('mkfifo', [join(src, 'a', 'fifo')]);
    const dst = join(base, 'gnu-dst');
    const x = await extract(gnuTar(['-cf', '-', '-C', src, 'a']), dst);
    expect(readFileSync(join(dst, 'a', 'n'.repeat(120), 'f.txt'), 'utf8')).toBe('long name\n');
    expect(readFileSync(join(dst, 'a', 'hard')).equals(Buffer.alloc(200_000, 7))).toBe(true);
    expect(statSync(join(dst, 'a', 'hard')).nlink).toBe(1);
    expect(readlinkSync(join(dst, 'a', 'abs-link'))).toBe('/etc/passwd');
    expect(existsSync(join(dst, 'a', 'fifo'))).toBe(false);
    expect(x.skipped).toBe(1);
    // Extracting the same tree again replaces its links and files.
    await extract(gnuTar(['-cf', '-', '-C', src, 'a']), dst);
    expect(readlinkSync(join(dst, 'a', 'abs-link'))).toBe('/etc/passwd');
  });

  it('extracts pax archives (GNU tar --format=pax)', async () => {
    const src = join(base, 'pax-src');
    sampleTree(src);
    const dst = join(base, 'pax-dst');
    await extract(gnuTar(['--format=pax', '-cf', '-', '-C', src, 'a']), dst);
    expect(readFileSync(join(dst, 'a', 'n'.repeat(120), 'f.txt'), 'utf8')).toBe('long name\n');
  });

  it('drops set-uid bits', async () => {
    const src = join(base, 'suid-src');
    mkdirSync(src);
    writeFileSync(join(src, 'prog'), '#!/bin/sh\n', { mode: 0o4755 });
    const dst = join(base, 'suid-dst');
    await extract(gnuTar(['-cf', '-', '-C', src, 'prog']), dst);
    expect(statSync(join(dst, 'prog')).mode & 0o7777).toBe(0o755);
  });

  it('refuses a member named with ..', async () => {
    const src = join(base, 'dotdot-src', 'in');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'x'), 'x');
    const evil = gnuTar(['-cf', '-', '-P', '-C', src, '../in/x']);
    await expect(extract(evil, join(base, 'dotdot-dst'))).rejects.toThrow(/the archive from the appliance names '\.\.\/in\/x', outside the directory/);
  });

  it('refuses a member that leads through a link the archive itself planted', async () => {
    // First member: link -> outside; then a directory and file under link/.
    const a = join(base, 'plant-a');
    const b = join(base, 'plant-b');
    mkdirSync(a);
    mkdirSync(join(b, 'link'), { recursive: true });
    symlinkSync(outside, join(a, 'link'));
    writeFileSync(join(b, 'link', 'dropped'), 'escaped\n');
    const archive = Buffer.concat([gnuTar(['-cf', '-', '-C', a, 'link']).subarray(0, 512), gnuTar(['-cf', '-', '-C', b, 'link'])]);
    await expect(extract(archive, join(base, 'plant-dst'))).rejects.toThrow(/host path 'out\/link' is a symbolic link/);
    expect(existsSync(join(outside, 'dropped'))).toBe(false);
  });

  it('refuses a file over a link planted in the target beforehand', async () => {
    const dst = join(base, 'planted-dst');
    mkdirSync(dst);
    symlinkSync(join(outside, 'secret'), join(dst, 'file.txt'));
    await expect(extract(gnuTar(['-cf', '-', '-C', root, 'file.txt']), dst)).rejects.toThrow(/host path 'out\/file.txt' is a symbolic link/);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('outside\n');
  });

  it('refuses an archive with a damaged header or cut short', async () => {
    const good = gnuTar(['-cf', '-', '-C', root, 'file.txt']);
    const bad = Buffer.from(good);
    bad[0] = bad[0]! ^ 0xff;
    await expect(extract(bad, join(base, 'bad-dst'))).rejects.toThrow(/has a damaged header/);
    await expect(extract(good.subarray(0, 700), join(base, 'short-dst'))).rejects.toThrow(/ends in the middle of a member/);
  });
});
