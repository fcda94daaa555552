// guestsh called by the name guestfish, as the scripts written for guestfish
// call it: the lines they grep and compare (errors, -x traces), the commands
// they give straight after the options, the environment libguestfs's own test
// harness sets. Each case is one behaviour libguestfs's shell tests check
// (test/upstream/ runs those tests themselves).
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { scaled } from './slowdown.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/guestsh.js');
const work = mkdtempSync(join(tmpdir(), 'guestsh-parity-'));
const guestfish = join(work, 'bin', 'guestfish');
mkdirSync(dirname(guestfish));
symlinkSync(CLI, guestfish);

afterAll(() => rmSync(work, { recursive: true, force: true }));

type Run = { code: number; stdout: string; stderr: string };

/** Runs `program` (the guestfish link, or guestsh itself) with `input` on stdin. */
function run(program: 'guestfish' | 'guestsh', args: string[], input = '', env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Run> {
  const [file, argv] = program === 'guestfish' ? [guestfish, args] : ['node', [CLI, ...args]];
  return new Promise((done) => {
    const child = execFile(file, argv, { cwd: work, timeout: scaled(timeoutMs), env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      done({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

describe('guestsh as guestfish: the lines scripts read', () => {
  it('a bad integer gets guestfish\'s own line (xstrtoll\'s code), also for 09, and the script goes on after "-"', async () => {
    const r = await run('guestfish', [], ['-set-memsize 09', '-set-memsize ABC', '-set-memsize 123L', '-set-memsize 9000000000000000', '-set-memsize 0x10000000000000000', 'get-memsize', ''].join('\n'));
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      'set-memsize: memsize: invalid integer parameter (xstrtoll returned 2)',
      'set-memsize: memsize: invalid integer parameter (xstrtoll returned 4)',
      'set-memsize: memsize: invalid integer parameter (xstrtoll returned 2)',
      'set-memsize: memsize: integer out of range',
      'set-memsize: memsize: invalid integer parameter (xstrtoll returned 1)',
    ]);
    expect(r.stdout).toMatch(/^\d+\n$/);
  });

  it('a failed call is SCRIPT:LINE: libguestfs: error: ACTION: …; under its own name guestsh keeps its style', async () => {
    const script = join(work, 'small.gfs');
    writeFileSync(script, '# a comment\nset-memsize 1\n');
    const fish = await run('guestfish', ['-f', script]);
    expect(fish.code).toBe(1);
    expect(fish.stderr).toBe(`${script}:2: libguestfs: error: set_memsize: too small value for memsize (must be at least 256)\n`);
    // A command on the command line is line 0 of stdin to guestfish.
    expect((await run('guestfish', ['set-memsize', '1'])).stderr).toBe('*stdin*:0: libguestfs: error: set_memsize: too small value for memsize (must be at least 256)\n');
    const sh = await run('guestsh', ['-f', script]);
    expect(sh.stderr).toBe(`guestsh: ${script}:2: error: set_memsize: too small value for memsize (must be at least 256)\n`);
  });

  it('a line that does not parse is "guestfish: …", and a leading "-" still lets the script go on', async () => {
    const r = await run('guestfish', [], '-echo "\\x0"\n-echo "abc\necho done\n');
    expect(r.stderr).toBe('guestfish: invalid escape sequence in string (starting at offset 0)\nguestfish: unterminated double quote\n');
    expect(r.stdout).toBe('done\n');
  });

  it('an unknown command is "NAME: unknown command"', async () => {
    const r = await run('guestfish', [], 'frobnicate\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('frobnicate: unknown command\n');
  });

  it('-x traces -a as add_drive with the optional arguments given, in the order guestfish prints them; --format applies to the -a after it', async () => {
    const img = join(work, 'trace.img');
    writeFileSync(img, Buffer.alloc(1 << 20));
    const r = await run('guestfish', ['-x', '--ro', '--format=raw', '-a', img, '--format', '-a', `file://${img}`], '');
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.includes('add_drive "'))).toEqual([
      `libguestfs: trace: add_drive "${img}" "readonly:true" "format:raw"`,
      `libguestfs: trace: add_drive "${img}" "readonly:true"`,
    ]);
  });
});

describe('commands straight after the options', () => {
  it('alloc and sparse make an image of exactly the size asked (qemu-img would round it up to a sector), allocated or not', async () => {
    const img = join(work, 'alloc.img');
    expect((await run('guestfish', ['alloc', img, '200000'])).code).toBe(0);
    expect(statSync(img).size).toBe(200000);
    expect(statSync(img).blocks).toBeGreaterThan(0);
    expect((await run('guestfish', ['sparse', img, '100000'])).code).toBe(0);
    expect(statSync(img).size).toBe(100000);
    expect(statSync(img).blocks).toBe(0);
  });

  it('disk-create of a name with a colon makes that file, not a qemu protocol', async () => {
    const r = await run('guestfish', ['disk-create', 'disk:0.img', 'qcow2', '1M']);
    expect(r.stderr).toBe('');
    expect(readdirSync(work)).toContain('disk:0.img');
  });
});

describe('the environment libguestfs\'s test harness sets', () => {
  it('LIBGUESTFS_TMPDIR and LIBGUESTFS_CACHEDIR are taken without a word on stderr; get-tmpdir reports the first', async () => {
    const dir = mkdtempSync(join(work, 'tmp-'));
    const r = await run('guestfish', [], 'get-tmpdir\nget-cachedir\n', { LIBGUESTFS_TMPDIR: dir, LIBGUESTFS_CACHEDIR: dir });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${dir}\n${dir}\n`);
  });
});

describe('add_drive: blocksize, iface, /dev/null', () => {
  it('blocksize 4096 is the disk\'s sector size in the guest; /dev/null is a small blank disk of the session\'s, nothing made in /dev', async () => {
    const before = readdirSync('/dev').filter((n) => n.includes('guestsh'));
    const r = await run('guestfish', ['--ro', 'add', '/dev/null', 'blocksize:4096', ':', 'run', ':', 'blockdev-getss', '/dev/sda', ':', 'blockdev-getsize64', '/dev/sda']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('4096\n4096\n');
    expect(readdirSync('/dev').filter((n) => n.includes('guestsh'))).toEqual(before);
  });

  it('a blocksize other than 512 or 4096 and an iface other than scsi are refused with one line; iface:scsi is taken', async () => {
    const bad = await run('guestfish', ['add', '/dev/null', 'blocksize:1000']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('*stdin*:0: libguestfs: error: add_drive: blocksize parameter is invalid: 1000 (512 or 4096)\n');
    const virtio = await run('guestfish', ['add', '/dev/null', 'iface:virtio']);
    expect(virtio.code).toBe(1);
    expect(virtio.stderr).toMatch(/^\*stdin\*:0: libguestfs: error: add_drive: not supported in guestsh: optional argument iface:virtio: .*leave iface out or give iface:scsi\n$/);
    const scsi = await run('guestfish', ['add', '/dev/null', 'iface:scsi']);
    expect(scsi.stderr).toBe('');
    expect(scsi.code).toBe(0);
  });
});

describe('edit', () => {
  it('through a symlink edits its target and leaves the link a link', async () => {
    const script = 'write /target.txt "first\\n"\nln-s /target.txt /link.txt\nedit /link.txt\nis-symlink /link.txt\ncat /target.txt\n';
    const r = await run('guestfish', ['-N', join(work, 'edit.img') + '=fs', '-m', '/dev/sda1'], script, { EDITOR: 'echo second >>' });
    expect(r.stderr).toBe('');
    // cat ends its output with a newline of its own, as guestfish's does.
    expect(r.stdout).toBe('true\nfirst\nsecond\n\n');
  });
});

describe('tar-in', () => {
  it("of an archive that is not one, of one cut short and of one too big for the disk: guestfish's error line each, and the script goes on after '-'", async () => {
    const garbage = join(work, 'garbage.tar');
    writeFileSync(garbage, Buffer.alloc(64 * 1024, 0x5a));
    const big = join(work, 'big');
    mkdirSync(big);
    writeFileSync(join(big, 'big.bin'), Buffer.alloc(12 << 20, 1));
    const whole = join(work, 'big.tar');
    execFileSync('tar', ['cf', whole, '-C', big, 'big.bin']);
    const cut = join(work, 'cut.tar');
    writeFileSync(cut, readFileSync(whole).subarray(0, 100 * 1024));
    const script = [`-tar-in ${garbage} /`, 'echo one', `-tar-in ${cut} /`, 'echo two', `-tar-in ${whole} /`, 'echo three', ''].join('\n');
    const r = await run('guestfish', ['-N', `${join(work, 'tar.img')}=fs:ext2:8M`, '-m', '/dev/sda1'], script);
    expect(r.stdout).toBe('one\ntwo\nthree\n');
    const errors = r.stderr.split('\n').filter((l) => l.includes('libguestfs: error:'));
    expect(errors).toEqual([
      expect.stringMatching(/^\*stdin\*:1: libguestfs: error: tar_in: tar subcommand failed on directory: \/: tar: This does not look like a tar archive/),
      expect.stringMatching(/^\*stdin\*:3: libguestfs: error: tar_in: tar subcommand failed on directory: \/: tar: .*Unexpected EOF in archive/),
      // The disk is full: tar's own words for it.
      expect.stringMatching(/^\*stdin\*:5: libguestfs: error: tar_in: tar subcommand failed on directory: \/: tar: big\.bin: Wrote only \d+ of \d+ bytes/),
    ]);
    expect(r.code).toBe(0);
  }, scaled(200_000));
});

describe('Key arguments', () => {
  it('left out of the words, each is read as guestfish reads it: the next line of the script on stdin, in order; given as a word it is taken too', async () => {
    const disk = join(work, 'keys.img');
    const script = [
      `sparse ${disk} 32M`,
      'run',
      'luks-format /dev/sda 0',
      'key0',
      // Two keys, the old then the new, then the key slot.
      'luks-add-key /dev/sda 1',
      'key0',
      'key1',
      'luks-open /dev/sda opened',
      'key1',
      'list-dm-devices',
      'luks-close /dev/mapper/opened',
      // A wrong key is the call's failure; the line after it is still the key, not a command.
      '-luks-open /dev/sda wrong',
      'not-a-key',
      // guestsh's own way still works: the key as a word.
      'luks-open /dev/sda key0 again',
      'list-dm-devices',
      'luks-close /dev/mapper/again',
      'luks-open /dev/sda last',
      '',
    ].join('\n');
    // Each key costs a key derivation (PBKDF) in an emulated CPU: minutes, not seconds.
    const r = await run('guestfish', ['--keys-from-stdin'], script, {}, 300_000);
    expect(r.stdout).toBe('/dev/mapper/opened\n/dev/mapper/again\n');
    const errors = r.stderr.split('\n').filter(Boolean);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^\*stdin\*:13: libguestfs: error: luks_open: /);
    // Input ended where the last key should be: one line naming the argument, and the script fails.
    expect(errors[1]).toBe('guestfish: no key for key: *stdin* ended first (give keys one a line with --keys-from-stdin, or at a terminal)');
    expect(r.code).toBe(1);
  }, scaled(330_000));

  it('without --keys-from-stdin and without a terminal, the key is read from stdin as well (guestfish falls back to it)', async () => {
    const r = await run('guestsh', ['-N', `${join(work, 'nokeyopt.img')}=disk:32M`], ['luks-format /dev/sda 0', 'k', 'luks-open /dev/sda m', 'k', 'list-dm-devices', ''].join('\n'), {}, 180_000);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('/dev/mapper/m\n');
  }, scaled(200_000));
});

describe('-h', () => {
  it('lists every command the installed guestfish lists, aliases included', async () => {
    const names = (text: string): string[] => [...new Set(text.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean))];
    const ours = new Set(names((await run('guestfish', ['-h'])).stdout));
    const theirs = await new Promise<string>((done, fail) =>
      execFile('/usr/bin/guestfish', ['-h'], { timeout: scaled(30_000) }, (err, stdout) => (err ? fail(err) : done(stdout))),
    );
    const missing = names(theirs).slice(1).filter((n) => !ours.has(n));
    expect(missing.sort()).toEqual([]);
  });
});
