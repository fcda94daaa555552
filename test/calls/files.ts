// File and directory calls: a fresh ext4 filesystem on /dev/sdb mounted at /.
import A from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Ctx, Group } from './table.js';

const collect = () => {
  const chunks: Buffer[] = [];
  return { fileOut: (b: Buffer) => void chunks.push(Buffer.from(b)), get data() { return Buffer.concat(chunks); } };
};
const feed = (b: Buffer) => ({ fileIn: (async function* () { yield b; })() });
const S_IFMT = 0o170000n;

async function fresh(c: Ctx, dir: string): Promise<void> {
  await c.call('rm_rf', [dir]);
  await c.call('mkdir', [dir]);
}

export const filesGroup: Group = {
  fixture: 'ext4',
  title: 'ext4 on /dev/sdb mounted at /',
  cases: [
    {
      actions: ['mkdir', 'mkdir_p', 'mkdir_mode', 'rmdir', 'is_dir', 'exists', 'mkdtemp', 'mktemp', 'touch', 'is_file', 'rm', 'rm_f', 'rm_rf', 'ls', 'ls0', 'll', 'llz', 'readdir', 'find', 'find0', 'glob_expand'],
      async run(c) {
        await fresh(c, '/d');
        await c.call('mkdir_p', ['/d/a/b/c']);
        await c.call('mkdir_mode', ['/d/m', 0o700]);
        A.equal((await c.call('statns', ['/d/m'])).st_mode & 0o777n, 0o700n);
        await c.call('touch', ['/d/a/f1']);
        A.equal(await c.call('is_file', ['/d/a/f1']), true);
        A.equal(await c.call('is_dir', ['/d/a/b']), true);
        A.equal(await c.call('exists', ['/d/nothing']), false);
        A.deepEqual(await c.call('ls', ['/d/a']), ['b', 'f1']);
        const raw = collect();
        await c.call('ls0', ['/d/a', '-'], {}, raw);
        A.deepEqual(raw.data.toString().split('\0').filter(Boolean).sort(), ['b', 'f1']);
        A.match(await c.call('ll', ['/d/a']), /f1/);
        A.match(await c.call('llz', ['/d/a']), /f1/);
        const ents = await c.call('readdir', ['/d/a']);
        A.deepEqual(ents.map((e: { name: string; ftyp: string }) => `${e.name}:${e.ftyp}`).sort(), ['..:d', '.:d', 'b:d', 'f1:r']);
        // As in libguestfs 1.48: below a subdirectory the names keep their leading slash.
        A.deepEqual(await c.call('find', ['/d/a']), ['/b', '/b/c', '/f1']);
        const f0 = collect();
        await c.call('find0', ['/d/a', '-'], {}, f0);
        A.deepEqual(f0.data.toString().split('\0').filter(Boolean).sort(), ['/b', '/b/c', '/f1']);
        A.deepEqual(await c.call('glob_expand', ['/d/a/*']), ['/d/a/b/', '/d/a/f1']);
        A.deepEqual(await c.call('glob_expand', ['/d/a/*'], { directoryslash: false }), ['/d/a/b', '/d/a/f1']);
        const t = await c.call('mkdtemp', ['/d/tmpXXXXXX']);
        A.match(t, /^\/d\/tmp.{6}$/);
        A.equal(await c.call('is_dir', [t]), true);
        const f = await c.call('mktemp', ['/d/fXXXXXX'], { suffix: '.txt' });
        A.match(f, /^\/d\/f.{6}\.txt$/);
        await c.call('rm', [f]);
        await c.call('rm_f', ['/d/not-there']);
        await c.call('rmdir', [t]);
        A.equal(await c.call('exists', [t]), false);
        await c.call('rm_rf', ['/d/a']);
        A.deepEqual(await c.call('ls', ['/d']), ['m']);
      },
    },
    {
      actions: ['write', 'write_append', 'cat', 'read_file', 'read_lines', 'write_file', 'filesize', 'head', 'head_n', 'tail', 'tail_n', 'wc_c', 'wc_l', 'wc_w', 'hexdump', 'strings', 'strings_e', 'pread', 'pwrite', 'truncate', 'truncate_size', 'fallocate', 'fallocate64', 'fill', 'fill_pattern', 'fill_dir', 'is_zero', 'equal', 'checksum', 'du'],
      async run(c) {
        await fresh(c, '/t');
        const lines = Array.from({ length: 15 }, (_, i) => `line ${i + 1}`);
        await c.call('write', ['/t/f', `${lines.join('\n')}\n`]);
        await c.call('write_append', ['/t/f', 'tail words\r\n']);
        A.deepEqual(await c.call('read_lines', ['/t/f']), [...lines, 'tail words']);
        A.equal((await c.call('cat', ['/t/f'])).split('\n').length, 17);
        A.equal(await c.call('filesize', ['/t/f']), BigInt(`${lines.join('\n')}\ntail words\r\n`.length));
        A.deepEqual(await c.call('head', ['/t/f']), lines.slice(0, 10));
        A.deepEqual(await c.call('head_n', [3, '/t/f']), lines.slice(0, 3));
        A.deepEqual(await c.call('tail_n', [2, '/t/f']), ['line 15', 'tail words\r']);
        A.equal((await c.call('tail', ['/t/f'])).length, 10);
        A.equal(await c.call('wc_l', ['/t/f']), 16);
        A.equal(await c.call('wc_w', ['/t/f']), 32);
        A.equal(await c.call('wc_c', ['/t/f']), Number(await c.call('filesize', ['/t/f'])));
        await c.call('write_file', ['/t/w', 'old style', 0]);
        A.equal(await c.call('cat', ['/t/w']), 'old style');
        A.match(await c.call('hexdump', ['/t/w']), /^00000000  6f 6c 64 20/);
        A.deepEqual(await c.call('strings', ['/t/w']), ['old style']);
        await c.call('write', ['/t/u16', Buffer.from('wide text\0', 'utf16le')]);
        A.deepEqual(await c.call('strings_e', ['l', '/t/u16']), ['wide text']);
        A.equal(await c.call('pwrite', ['/t/w', 'NEW', 0n]), 3);
        A.equal((await c.call('pread', ['/t/w', 5, 0n])).toString(), 'NEW s');
        A.deepEqual(await c.call('read_file', ['/t/w']), Buffer.from('NEW style'));
        await c.call('truncate_size', ['/t/w', 3n]);
        A.equal(await c.call('cat', ['/t/w']), 'NEW');
        await c.call('truncate', ['/t/w']);
        A.equal(await c.call('filesize', ['/t/w']), 0n);
        await c.call('fallocate', ['/t/z', 4096]);
        await c.call('fallocate64', ['/t/z64', 1048576n]);
        A.equal(await c.call('filesize', ['/t/z64']), 1048576n);
        A.equal(await c.call('is_zero', ['/t/z64']), true);
        await c.call('fill', [0x41, 10, '/t/aaa']);
        A.equal(await c.call('cat', ['/t/aaa']), 'AAAAAAAAAA');
        await c.call('fill_pattern', ['ab', 5, '/t/pat']);
        A.equal(await c.call('cat', ['/t/pat']), 'ababa');
        A.equal(await c.call('is_zero', ['/t/pat']), false);
        await c.call('mkdir', ['/t/many']);
        await c.call('fill_dir', ['/t/many', 3]);
        A.deepEqual(await c.call('ls', ['/t/many']), ['00000000', '00000001', '00000002']);
        await c.call('write', ['/t/aaa2', 'AAAAAAAAAA']);
        A.equal(await c.call('equal', ['/t/aaa', '/t/aaa2']), true);
        A.equal(await c.call('equal', ['/t/aaa', '/t/pat']), false);
        A.equal(await c.call('checksum', ['sha256', '/t/aaa']), createHash('sha256').update('AAAAAAAAAA').digest('hex'));
        A.equal(await c.call('checksum', ['md5', '/t/pat']), createHash('md5').update('ababa').digest('hex'));
        A.ok((await c.call('du', ['/t'])) >= 1024n);
      },
    },
    {
      actions: ['cp', 'cp_a', 'cp_r', 'mv', 'rename', 'ln', 'ln_f', 'ln_s', 'ln_sf', 'readlink', 'readlinklist', 'realpath', 'case_sensitive_path', 'is_symlink', 'lstatns', 'statns', 'stat', 'lstat', 'lstatlist', 'lstatnslist', 'chmod', 'chown', 'lchown', 'umask', 'get_umask', 'utimens', 'copy_attributes'],
      async run(c) {
        await fresh(c, '/c');
        await c.call('write', ['/c/src', 'payload']);
        await c.call('cp', ['/c/src', '/c/cp']);
        await c.call('mkdir', ['/c/dir']);
        await c.call('write', ['/c/dir/inner', 'x']);
        await c.call('cp_r', ['/c/dir', '/c/dir2']);
        A.deepEqual(await c.call('ls', ['/c/dir2']), ['inner']);
        await c.call('chmod', [0o640, '/c/src']);
        await c.call('chown', [1000, 1001, '/c/src']);
        await c.call('cp_a', ['/c/src', '/c/cpa']);
        const sa = await c.call('statns', ['/c/cpa']);
        A.deepEqual([sa.st_mode & 0o777n, sa.st_uid, sa.st_gid], [0o640n, 1000n, 1001n]);
        await c.call('mv', ['/c/cp', '/c/moved']);
        await c.call('rename', ['/c/moved', '/c/renamed']);
        A.equal(await c.call('cat', ['/c/renamed']), 'payload');
        await c.call('ln', ['/c/src', '/c/hard']);
        A.equal((await c.call('statns', ['/c/src'])).st_nlink, 2n);
        await c.call('ln_f', ['/c/renamed', '/c/hard']);
        A.equal((await c.call('statns', ['/c/src'])).st_nlink, 1n);
        await c.call('ln_s', ['src', '/c/sym']);
        await c.call('ln_sf', ['renamed', '/c/sym2']);
        await c.call('ln_sf', ['cpa', '/c/sym2']);
        A.equal(await c.call('is_symlink', ['/c/sym']), true);
        A.equal(await c.call('readlink', ['/c/sym2']), 'cpa');
        A.deepEqual(await c.call('readlinklist', ['/c', ['sym', 'sym2', 'src']]), ['src', 'cpa', '']);
        A.equal(await c.call('realpath', ['/c/sym']), '/c/src');
        A.equal(await c.call('case_sensitive_path', ['/C/SRC']), '/c/src');
        A.equal((await c.call('lstatns', ['/c/sym'])).st_mode & S_IFMT, 0o120000n);
        const st = await c.call('stat', ['/c/sym']);
        A.equal(st.size, 7n);
        A.equal((await c.call('lstat', ['/c/sym'])).size, 3n);
        const names = ['src', 'sym'];
        A.deepEqual((await c.call('lstatlist', ['/c', names])).map((s: { size: bigint }) => s.size), [7n, 3n]);
        A.deepEqual((await c.call('lstatnslist', ['/c', names])).map((s: { st_size: bigint }) => s.st_size), [7n, 3n]);
        // Batching: more names than one daemon call takes.
        const many = Array.from({ length: 2500 }, () => 'src');
        A.equal((await c.call('lstatnslist', ['/c', many])).length, 2500);
        await c.call('lchown', [7, 8, '/c/sym']);
        const ls = await c.call('lstatns', ['/c/sym']);
        A.deepEqual([ls.st_uid, ls.st_gid], [7n, 8n]);
        const old = await c.call('umask', [0o077]);
        A.equal(old, 0o022);
        A.equal(await c.call('get_umask'), 0o077);
        await c.call('touch', ['/c/private']);
        A.equal((await c.call('statns', ['/c/private'])).st_mode & 0o777n, 0o600n);
        await c.call('umask', [old]);
        await c.call('utimens', ['/c/src', 1000000000n, 5n, 1200000000n, 7n]);
        const t = await c.call('statns', ['/c/src']);
        A.deepEqual([t.st_atime_sec, t.st_atime_nsec, t.st_mtime_sec, t.st_mtime_nsec], [1000000000n, 5n, 1200000000n, 7n]);
        await c.call('touch', ['/c/target']);
        await c.call('copy_attributes', ['/c/src', '/c/target'], { all: true });
        const ta = await c.call('statns', ['/c/target']);
        A.deepEqual([ta.st_mode & 0o777n, ta.st_uid, ta.st_gid], [0o640n, 1000n, 1001n]);
      },
    },
    {
      // The optional group libguestfs-rsync adds to the appliance.
      actions: ['rsync'],
      async run(c) {
        await fresh(c, '/r');
        await c.call('mkdir_p', ['/r/src/sub']);
        await c.call('write', ['/r/src/sub/f', 'synced']);
        await c.call('mkdir', ['/r/dst']);
        await c.call('write', ['/r/dst/stale', 'x']);
        await c.call('rsync', ['/r/src/', '/r/dst'], { archive: true, deletedest: true });
        A.deepEqual(await c.call('find', ['/r/dst']), ['/sub', '/sub/f']);
        A.equal(await c.call('cat', ['/r/dst/sub/f']), 'synced');
      },
    },
    {
      actions: ['setxattr', 'getxattr', 'getxattrs', 'removexattr', 'lsetxattr', 'lgetxattr', 'lgetxattrs', 'lremovexattr', 'lxattrlist', 'acl_set_file', 'acl_get_file', 'acl_delete_def_file', 'cap_set_file', 'cap_get_file', 'set_e2attrs', 'get_e2attrs', 'get_e2generation'],
      async run(c) {
        await fresh(c, '/x');
        await c.call('touch', ['/x/f']);
        await c.call('ln_s', ['f', '/x/l']);
        await c.call('setxattr', ['user.color', 'blue', 4, '/x/f']);
        A.deepEqual(await c.call('getxattr', ['/x/f', 'user.color']), Buffer.from('blue'));
        A.deepEqual((await c.call('getxattrs', ['/x/f'])).map((x: { attrname: string }) => x.attrname), ['user.color']);
        await c.call('lsetxattr', ['trusted.k', 'v', 1, '/x/l']);
        A.deepEqual(await c.call('lgetxattr', ['/x/l', 'trusted.k']), Buffer.from('v'));
        A.deepEqual((await c.call('lgetxattrs', ['/x/l'])).map((x: { attrname: string }) => x.attrname), ['trusted.k']);
        const list = await c.call('lxattrlist', ['/x', ['f', 'l']]);
        // One entry with an empty name (the count) starts each file's attributes.
        A.deepEqual(list.map((x: { attrname: string; attrval: Buffer }) => [x.attrname, x.attrval.toString()]), [['', '1\0'], ['user.color', 'blue'], ['', '1\0'], ['trusted.k', 'v']]);
        await c.call('removexattr', ['user.color', '/x/f']);
        await c.call('lremovexattr', ['trusted.k', '/x/l']);
        A.deepEqual(await c.call('getxattrs', ['/x/f']), []);
        A.deepEqual(await c.call('lgetxattrs', ['/x/l']), []);
        await c.call('acl_set_file', ['/x/f', 'access', 'u::rw-,u:1000:r--,g::r--,m::r--,o::---']);
        A.match(await c.call('acl_get_file', ['/x/f', 'access']), /user:1000:r--/);
        await c.call('mkdir', ['/x/d']);
        await c.call('acl_set_file', ['/x/d', 'default', 'u::rwx,g::r-x,o::---']);
        A.match(await c.call('acl_get_file', ['/x/d', 'default']), /group::r-x/);
        await c.call('acl_delete_def_file', ['/x/d']);
        A.equal(await c.call('acl_get_file', ['/x/d', 'default']), '');
        await c.call('cap_set_file', ['/x/f', 'cap_net_raw=ep']);
        A.match(await c.call('cap_get_file', ['/x/f']), /cap_net_raw[+=]ep/);
        await c.call('set_e2attrs', ['/x/f', 'A']);
        A.match(await c.call('get_e2attrs', ['/x/f']), /A/);
        await c.call('set_e2attrs', ['/x/f', 'A'], { clear: true });
        A.doesNotMatch(await c.call('get_e2attrs', ['/x/f']), /A/);
        A.equal(typeof (await c.call('get_e2generation', ['/x/f'])), 'bigint');
        // The appliance kernel refuses FS_IOC_SETVERSION on ext4 (see notExercised).
        await c.fails(/Inappropriate ioctl/, 'set_e2generation', ['/x/f', 123456n]);
      },
    },
    {
      actions: ['mkfifo', 'mknod', 'mknod_b', 'mknod_c', 'is_fifo', 'is_blockdev', 'is_chardev', 'is_socket', 'file', 'zfile', 'file_architecture'],
      async run(c) {
        await fresh(c, '/n');
        await c.call('mkfifo', [0o644, '/n/fifo']);
        await c.call('mknod', [0o10644, 0, 0, '/n/fifo2']);
        await c.call('mknod_b', [0o600, 8, 0, '/n/blk']);
        await c.call('mknod_c', [0o600, 1, 3, '/n/chr']);
        A.equal(await c.call('is_fifo', ['/n/fifo']), true);
        A.equal(await c.call('is_fifo', ['/n/fifo2']), true);
        A.equal(await c.call('is_blockdev', ['/n/blk']), true);
        A.equal(await c.call('is_chardev', ['/n/chr']), true);
        A.equal(await c.call('is_socket', ['/n/chr']), false);
        await c.call('ln_s', ['chr', '/n/chrlink']);
        A.equal(await c.call('is_chardev', ['/n/chrlink']), false);
        A.equal(await c.call('is_chardev', ['/n/chrlink'], { followsymlinks: true }), true);
        A.equal(await c.call('file', ['/n/fifo']), 'FIFO');
        A.match(await c.call('file', ['/n/chr']), /character (special|device)/);
        await c.call('write', ['/n/t.gz', gzipSync('hello zfile\n')]);
        A.match(await c.call('zfile', ['gzip', '/n/t.gz']), /ASCII text/);
        A.match(await c.call('file', ['/n/t.gz']), /gzip compressed/);
        // A real x86-64 ELF: the host's own /bin/true.
        await c.call('upload', ['/bin/true', '/n/true']);
        A.equal(await c.call('file_architecture', ['/n/true']), 'x86_64');
      },
    },
    {
      actions: ['grep', 'egrep', 'fgrep', 'grepi', 'egrepi', 'fgrepi', 'zgrep', 'zegrep', 'zfgrep', 'zgrepi', 'zegrepi', 'zfgrepi'],
      async run(c) {
        await fresh(c, '/g');
        const text = 'alpha\nBeta\ngamma.x\nbeta2\n';
        await c.call('write', ['/g/t', text]);
        await c.call('write', ['/g/t.gz', gzipSync(text)]);
        A.deepEqual(await c.call('grep', ['^b', '/g/t']), ['beta2']);
        A.deepEqual(await c.call('grep', ['^B', '/g/t'], { insensitive: true }), ['Beta', 'beta2']);
        A.deepEqual(await c.call('grep', ['a.x', '/g/t'], { fixed: true }), ['gamma.x']);
        A.deepEqual(await c.call('grep', ['a\\.x|^alpha', '/g/t'], { extended: true }), ['alpha', 'gamma.x']);
        A.deepEqual(await c.call('grep', ['beta', '/g/t.gz'], { compressed: true, insensitive: true }), ['Beta', 'beta2']);
        A.deepEqual(await c.call('egrep', ['^(alpha|beta2)$', '/g/t']), ['alpha', 'beta2']);
        A.deepEqual(await c.call('fgrep', ['a.x', '/g/t']), ['gamma.x']);
        A.deepEqual(await c.call('grepi', ['^beta$', '/g/t']), ['Beta']);
        A.deepEqual(await c.call('egrepi', ['^(ALPHA|x)$', '/g/t']), ['alpha']);
        A.deepEqual(await c.call('fgrepi', ['BETA', '/g/t']), ['Beta', 'beta2']);
        A.deepEqual(await c.call('zgrep', ['^g', '/g/t.gz']), ['gamma.x']);
        A.deepEqual(await c.call('zegrep', ['^(alpha|Beta)$', '/g/t.gz']), ['alpha', 'Beta']);
        A.deepEqual(await c.call('zfgrep', ['.x', '/g/t.gz']), ['gamma.x']);
        A.deepEqual(await c.call('zgrepi', ['^BETA$', '/g/t.gz']), ['Beta']);
        A.deepEqual(await c.call('zegrepi', ['^(GAMMA.X)$', '/g/t.gz']), ['gamma.x']);
        A.deepEqual(await c.call('zfgrepi', ['ALPHA', '/g/t.gz']), ['alpha']);
      },
    },
    {
      actions: ['upload', 'download', 'upload_offset', 'download_offset', 'base64_in', 'base64_out', 'tar_in', 'tar_out', 'tgz_in', 'tgz_out', 'txz_in', 'txz_out', 'cpio_out', 'checksums_out', 'compress_out', 'copy_in', 'copy_out'],
      async run(c) {
        await fresh(c, '/io');
        const host = join(c.tmp, 'io');
        mkdirSync(join(host, 'tree/sub'), { recursive: true });
        writeFileSync(join(host, 'tree/a.txt'), 'file a\n');
        writeFileSync(join(host, 'tree/sub/b.txt'), 'file b\n');
        await c.call('upload', [join(host, 'tree/a.txt'), '/io/a']);
        await c.call('upload_offset', [join(host, 'tree/sub/b.txt'), '/io/a', 7n]);
        A.equal(await c.call('cat', ['/io/a']), 'file a\nfile b\n');
        await c.call('download', ['/io/a', join(host, 'a.out')]);
        A.equal(readFileSync(join(host, 'a.out'), 'utf8'), 'file a\nfile b\n');
        await c.call('download_offset', ['/io/a', join(host, 'part'), 5n, 3n]);
        A.equal(readFileSync(join(host, 'part'), 'utf8'), 'a\nf');
        writeFileSync(join(host, 'b64'), Buffer.from('base64 payload').toString('base64'));
        await c.call('base64_in', [join(host, 'b64'), '/io/b64']);
        A.equal(await c.call('cat', ['/io/b64']), 'base64 payload');
        const b64 = collect();
        await c.call('base64_out', ['/io/b64', '-'], {}, b64);
        A.equal(Buffer.from(b64.data.toString(), 'base64').toString(), 'base64 payload');
        const tarFile = join(host, 'tree.tar');
        execFileSync('tar', ['-C', join(host, 'tree'), '-cf', tarFile, '.']);
        await c.call('mkdir', ['/io/t']);
        await c.call('tar_in', [tarFile, '/io/t']);
        A.deepEqual(await c.call('find', ['/io/t']), ['/a.txt', '/sub', '/sub/b.txt']);
        const tarOut = collect();
        await c.call('tar_out', ['/io/t', '-'], { compress: 'gzip', excludes: ['sub'] }, tarOut);
        writeFileSync(join(host, 'out.tgz'), tarOut.data);
        A.deepEqual(execFileSync('tar', ['-tzf', join(host, 'out.tgz')], { encoding: 'utf8' }).split('\n').filter(Boolean).sort(), ['./', './a.txt']);
        await c.call('mkdir', ['/io/z']);
        await c.call('tgz_in', ['-', '/io/z'], {}, feed(gzipSync(readFileSync(tarFile))));
        A.equal(await c.call('cat', ['/io/z/sub/b.txt']), 'file b\n');
        const tgz = collect();
        await c.call('tgz_out', ['/io/z', '-'], {}, tgz);
        A.ok(gunzipSync(tgz.data).includes(Buffer.from('file b')));
        const txz = collect();
        await c.call('txz_out', ['/io/z', '-'], {}, txz);
        writeFileSync(join(host, 'z.txz'), txz.data);
        A.ok(execFileSync('tar', ['-tJf', join(host, 'z.txz')], { encoding: 'utf8' }).includes('sub/b.txt'));
        await c.call('mkdir', ['/io/xz']);
        await c.call('txz_in', [join(host, 'z.txz'), '/io/xz']);
        A.equal(await c.call('cat', ['/io/xz/a.txt']), 'file a\n');
        const cpio = collect();
        await c.call('cpio_out', ['/io/t', '-'], { format: 'newc' }, cpio);
        A.equal(cpio.data.subarray(0, 6).toString(), '070701');
        const sums = collect();
        await c.call('checksums_out', ['sha1', '/io/t', '-'], {}, sums);
        A.match(sums.data.toString(), /[0-9a-f]{40}\s+\.\/sub\/b\.txt/);
        const z = collect();
        await c.call('compress_out', ['gzip', '/io/a', '-'], { level: 9 }, z);
        A.equal(gunzipSync(z.data).toString(), 'file a\nfile b\n');
        await c.call('mkdir', ['/io/in']);
        await c.call('copy_in', [join(host, 'tree'), '/io/in']);
        A.deepEqual(await c.call('find', ['/io/in']), ['/tree', '/tree/a.txt', '/tree/sub', '/tree/sub/b.txt']);
        const outDir = join(host, 'out');
        mkdirSync(outDir);
        await c.call('copy_out', ['/io/in/tree', outDir]);
        A.equal(readFileSync(join(outDir, 'tree/sub/b.txt'), 'utf8'), 'file b\n');
        await c.call('copy_out', ['/io/a', outDir]);
        A.equal(readFileSync(join(outDir, 'a'), 'utf8'), 'file a\nfile b\n');
        await c.fails(/does not exist/, 'copy_in', [join(host, 'missing'), '/io']);
        await c.fails(/not a directory/, 'copy_out', ['/io/a', join(host, 'a.out')]);
        A.ok(existsSync(join(outDir, 'tree/a.txt')));
      },
    },
    {
      actions: ['copy_file_to_file', 'copy_file_to_device', 'copy_device_to_file', 'mount_loop', 'mkswap_file', 'swapon_file', 'swapoff_file', 'mksquashfs', 'initrd_list', 'initrd_cat', 'isoinfo', 'isoinfo_device', 'scrub_file', 'scrub_device', 'scrub_freespace', 'zero_free_space', 'fstrim'],
      async run(c) {
        await fresh(c, '/k');
        await c.call('write', ['/k/src', 'copy me']);
        await c.call('copy_file_to_file', ['/k/src', '/k/dst'], { srcoffset: 5n, size: 2n });
        A.equal(await c.call('cat', ['/k/dst']), 'me');
        await c.call('copy_file_to_file', ['/k/src', '/k/dst'], { destoffset: 2n, append: false });
        A.equal((await c.call('read_file', ['/k/dst'])).subarray(2).toString(), 'copy me');
        await c.call('copy_file_to_device', ['/k/src', '/dev/sde'], { destoffset: 512n });
        A.equal((await c.call('pread_device', ['/dev/sde', 7, 512n])).toString(), 'copy me');
        await c.call('copy_device_to_file', ['/dev/sde', '/k/fromdev'], { srcoffset: 512n, size: 7n });
        A.equal(await c.call('cat', ['/k/fromdev']), 'copy me');
        await c.call('mkfs', ['ext2', '/dev/sde']);
        await c.call('copy_device_to_file', ['/dev/sde', '/k/loop.img']);
        await c.call('mkdir', ['/k/mnt']);
        await c.call('mount_loop', ['/k/loop.img', '/k/mnt']);
        A.ok((await c.call('ls', ['/k/mnt'])).includes('lost+found'));
        await c.call('umount', ['/k/mnt']);
        await c.call('fallocate64', ['/k/swap', 16n * 1024n * 1024n]);
        await c.call('mkswap_file', ['/k/swap']);
        await c.call('swapon_file', ['/k/swap']);
        await c.call('swapoff_file', ['/k/swap']);
        await c.call('mkdir_p', ['/k/sq/dir']);
        await c.call('write', ['/k/sq/dir/f', 'squashed']);
        const sq = collect();
        await c.call('mksquashfs', ['/k/sq', '-'], { compress: 'gzip' }, sq);
        A.equal(sq.data.subarray(0, 4).toString(), 'hsqs');
        // An initramfs built on the host: newc cpio, gzip-compressed.
        const rd = join(c.tmp, 'rd');
        mkdirSync(join(rd, 'etc'), { recursive: true });
        writeFileSync(join(rd, 'etc/initrd-release'), 'guestsh initrd\n');
        const cpio = execFileSync('sh', ['-c', 'cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet', 'sh', rd]);
        await c.call('write', ['/k/initrd.img', gzipSync(cpio)]);
        A.ok((await c.call('initrd_list', ['/k/initrd.img'])).includes('etc/initrd-release'));
        A.equal((await c.call('initrd_cat', ['/k/initrd.img', 'etc/initrd-release'])).toString(), 'guestsh initrd\n');
        await c.call('write', ['/k/iso.img', isoImage('GUESTSHISO')]);
        A.equal((await c.call('isoinfo', ['/k/iso.img'])).iso_volume_id, 'GUESTSHISO');
        await c.call('copy_file_to_device', ['/k/iso.img', '/dev/sde']);
        A.equal((await c.call('isoinfo_device', ['/dev/sde'])).iso_volume_id, 'GUESTSHISO');
        await c.call('write', ['/k/secret', 'wipe me']);
        await c.call('scrub_file', ['/k/secret']);
        A.equal(await c.call('exists', ['/k/secret']), false);
        await c.call('scrub_device', ['/dev/sde']);
        A.equal(await c.call('isoinfo_device', ['/dev/sde']).catch(() => null), null);
        await c.call('scrub_freespace', ['/k/scrubdir']);
        A.equal(await c.call('exists', ['/k/scrubdir']), false);
        await c.call('zero_free_space', ['/k']);
        await c.call('fstrim', ['/']);
        await c.call('zero_device', ['/dev/sde']);
      },
    },
    {
      actions: ['filesystem_walk', 'find_inode', 'download_inode', 'download_blocks', 'ntfscat_i'],
      async run(c) {
        await fresh(c, '/w');
        await c.call('write', ['/w/walked', 'found by tsk']);
        const ino = (await c.call('statns', ['/w/walked'])).st_ino as bigint;
        // The sleuthkit reads the device, not the journal: unmount so everything is checkpointed.
        await c.call('umount', ['/']);
        const walk = await c.call('filesystem_walk', ['/dev/sdb']);
        const entry = walk.find((e: { tsk_name: string }) => e.tsk_name === 'w/walked');
        A.ok(entry, 'w/walked in filesystem_walk');
        A.equal(entry.tsk_inode, ino);
        A.equal(entry.tsk_type, 'r');
        A.equal(entry.tsk_size, 12n);
        const byInode = await c.call('find_inode', ['/dev/sdb', ino]);
        A.deepEqual(byInode.map((e: { tsk_name: string }) => e.tsk_name), ['w/walked']);
        const data = collect();
        await c.call('download_inode', ['/dev/sdb', ino, '-'], {}, data);
        A.equal(data.data.toString(), 'found by tsk');
        const blocks = collect();
        // Free blocks near the end of the fresh filesystem: zeroes, one 4 KiB block each.
        await c.call('download_blocks', ['/dev/sdb', 120000n, 120002n, '-'], { unallocated: true }, blocks);
        A.equal(blocks.data.length, 3 * 4096);
        A.ok(blocks.data.every((b) => b === 0));
        await c.call('mount', ['/dev/sdb', '/']);
        // ntfscat_i on a small NTFS made on sde: inode 5 is the root directory, 3 $Volume.
        await c.call('mkfs', ['ntfs', '/dev/sde']);
        const vol = collect();
        await c.call('ntfscat_i', ['/dev/sde', 10n, '-'], {}, vol);
        A.equal(vol.data.length, 131072);
        await c.call('zero_device', ['/dev/sde']);
      },
    },
    {
      actions: ['yara_load', 'yara_scan', 'yara_destroy', 'inotify_init', 'inotify_add_watch', 'inotify_read', 'inotify_files', 'inotify_rm_watch', 'inotify_close'],
      async run(c) {
        await fresh(c, '/y');
        await c.call('write', ['/y/evil', 'xx GUESTSH_MARKER yy']);
        await c.call('write', ['/y/good', 'nothing here']);
        const rules = Buffer.from('rule guestsh_marker { strings: $a = "GUESTSH_MARKER" condition: $a }\n');
        await c.call('yara_load', ['-'], {}, feed(rules));
        const hit = await c.call('yara_scan', ['/y/evil']);
        A.deepEqual(hit, [{ yara_name: '/y/evil', yara_rule: 'guestsh_marker' }]);
        A.deepEqual(await c.call('yara_scan', ['/y/good']), []);
        await c.call('yara_destroy');
        await c.fails(/./, 'yara_scan', ['/y/evil']);
        await c.call('inotify_init', [16]);
        const wd = await c.call('inotify_add_watch', ['/y', 0x100 /* IN_CREATE */]);
        A.equal(typeof wd, 'bigint');
        await c.call('touch', ['/y/new1']);
        await c.call('touch', ['/y/new2']);
        const ev = await c.call('inotify_read');
        A.ok(ev.some((e: { in_name: string }) => e.in_name === 'new1'));
        await c.call('touch', ['/y/new3']);
        A.deepEqual(await c.call('inotify_files'), ['new3']);
        await c.call('inotify_rm_watch', [Number(wd)]);
        await c.call('inotify_close');
      },
    },
    {
      actions: ['hivex_open', 'hivex_root', 'hivex_node_name', 'hivex_node_add_child', 'hivex_node_children', 'hivex_node_get_child', 'hivex_node_parent', 'hivex_node_set_value', 'hivex_node_values', 'hivex_node_get_value', 'hivex_value_key', 'hivex_value_type', 'hivex_value_value', 'hivex_value_string', 'hivex_value_utf8', 'hivex_node_delete_child', 'hivex_commit', 'hivex_close'],
      async run(c) {
        await fresh(c, '/h');
        await c.call('upload', [c.f.minimalHive, '/h/hive']);
        await c.call('hivex_open', ['/h/hive'], { write: true });
        const root = await c.call('hivex_root');
        A.equal(typeof root, 'bigint');
        const soft = await c.call('hivex_node_add_child', [root, 'Software']);
        const vendor = await c.call('hivex_node_add_child', [soft, 'Vendor']);
        A.deepEqual((await c.call('hivex_node_children', [root])).map((n: { hivex_node_h: bigint }) => n.hivex_node_h), [soft]);
        A.equal(await c.call('hivex_node_get_child', [soft, 'Vendor']), vendor);
        A.equal(await c.call('hivex_node_name', [vendor]), 'Vendor');
        A.equal(await c.call('hivex_node_parent', [vendor]), soft);
        const utf16 = Buffer.from('guestsh\0', 'utf16le');
        await c.call('hivex_node_set_value', [vendor, 'Name', 1n /* REG_SZ */, utf16]);
        await c.call('hivex_node_set_value', [vendor, 'Count', 4n /* REG_DWORD */, Buffer.from([42, 0, 0, 0])]);
        const values = await c.call('hivex_node_values', [vendor]);
        A.equal(values.length, 2);
        const v = await c.call('hivex_node_get_value', [vendor, 'Name']);
        A.equal(await c.call('hivex_value_key', [v]), 'Name');
        A.equal(await c.call('hivex_value_type', [v]), 1n);
        A.deepEqual(await c.call('hivex_value_value', [v]), utf16);
        A.equal(await c.call('hivex_value_string', [v]), 'guestsh');
        A.equal(await c.call('hivex_value_utf8', [v]), 'guestsh');
        await c.call('hivex_commit', ['/h/hive2']);
        await c.call('hivex_node_delete_child', [vendor]);
        A.deepEqual(await c.call('hivex_node_children', [soft]), []);
        await c.call('hivex_close');
        await c.call('hivex_open', ['/h/hive2']);
        const r2 = await c.call('hivex_root');
        const s2 = await c.call('hivex_node_get_child', [r2, 'Software']);
        const v2 = await c.call('hivex_node_get_child', [s2, 'Vendor']);
        A.equal(await c.call('hivex_value_string', [await c.call('hivex_node_get_value', [v2, 'Name'])]), 'guestsh');
        await c.call('hivex_close');
      },
    },
  ],
};

/** A minimal ISO 9660 image: 16 empty sectors, a primary volume descriptor, a terminator, a root directory. */
function isoImage(volumeId: string): Buffer {
  const S = 2048;
  const img = Buffer.alloc(S * 20);
  const pvd = img.subarray(16 * S, 17 * S);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  pvd.fill(0x20, 8, 72);
  pvd.write('LINUX', 8, 'latin1');
  pvd.write(volumeId.padEnd(32, ' '), 40, 'latin1');
  const both32 = (off: number, v: number) => {
    pvd.writeUInt32LE(v, off);
    pvd.writeUInt32BE(v, off + 4);
  };
  const both16 = (off: number, v: number) => {
    pvd.writeUInt16LE(v, off);
    pvd.writeUInt16BE(v, off + 2);
  };
  both32(80, 20); // volume space size
  both16(120, 1); // volume set size
  both16(124, 1); // volume sequence number
  both16(128, S); // logical block size
  both32(132, 10); // path table size
  pvd.writeUInt32LE(18, 140); // L path table
  pvd.writeUInt32BE(19, 148); // M path table
  // Root directory record (34 bytes) at 156, extent at sector 19.
  const root = pvd.subarray(156, 190);
  root[0] = 34;
  root.writeUInt32LE(19, 2);
  root.writeUInt32BE(19, 6);
  root.writeUInt32LE(S, 10);
  root.writeUInt32BE(S, 14);
  root[25] = 2;
  root.writeUInt16LE(1, 28);
  root.writeUInt16BE(1, 30);
  root[32] = 1;
  pvd.fill(0x20, 190, 813);
  for (const off of [813, 830, 847, 864]) {
    pvd.write('0000000000000000', off, 'latin1');
    pvd[off + 16] = 0;
  }
  pvd[881] = 1;
  const term = img.subarray(17 * S, 18 * S);
  term[0] = 255;
  term.write('CD001', 1, 'latin1');
  term[6] = 1;
  // Path tables: one entry for the root.
  const lpt = img.subarray(18 * S, 19 * S);
  lpt[0] = 1;
  lpt.writeUInt32LE(19, 2);
  lpt.writeUInt16LE(1, 6);
  const dir = img.subarray(19 * S, 20 * S);
  for (const [i, id] of [0, 1].entries()) {
    const r = dir.subarray(i * 34, i * 34 + 34);
    r[0] = 34;
    r.writeUInt32LE(19, 2);
    r.writeUInt32BE(19, 6);
    r.writeUInt32LE(S, 10);
    r.writeUInt32BE(S, 14);
    r[25] = 2;
    r.writeUInt16LE(1, 28);
    r.writeUInt16BE(1, 30);
    r[32] = 1;
    r[33] = id;
  }
  return img;
}
