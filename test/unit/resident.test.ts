// The resident session's pieces that need no VM: its options, the private
// socket directory's checks, the token, the frames. (test/remote.test.ts
// runs the session itself.)
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/repl/options.js';
import { checkListenOptions } from '../../src/repl/resident.js';
import { leanRemoteRequest, remoteRequest } from '../../src/repl/remote.js';
import { FRAME, FrameReader, frame, makeResidentDir, residentDir, residentPaths, tokenMatches, writeToken } from '../../src/repl/resident-wire.js';

describe('the options', () => {
  it('takes --remote PID only inline: the next word is the command', () => {
    const o = parseOptions(['--remote', 'exit']);
    expect(o.remote).toBe('env');
    expect(o.commands).toEqual([['exit']]);
    expect(parseOptions(['--remote=4242', 'cat', '/etc/hostname']).remote).toBe(4242);
    expect(() => parseOptions(['--remote=abc', 'exit'])).toThrow(/--remote=abc: not a process id/);
    expect(parseOptions(['--remote', '--', '-cat', '/x']).commands).toEqual([['-cat', '/x']]);
  });

  it('reads the common --remote forms without the option table, as the table reads them, and leaves the rest to it', () => {
    for (const argv of [['--remote', 'exit'], ['--remote=4242', 'cat', '/etc/hostname', ':', 'ls', '/'], ['--remote', '--', '-cat', '/x'], ['--remote'], ['--remote=7', '-']]) {
      expect(leanRemoteRequest(argv), argv.join(' ')).toEqual(remoteRequest(parseOptions(argv)));
    }
    // An option after --remote, a bad pid, an empty command: the full command line parses (and reports) them.
    for (const argv of [['--remote', '-f', 'x.gfs'], ['--remote', '--ro', 'ls', '/'], ['--remote=abc', 'exit'], ['--remote=0', 'exit'], ['--remote', ':', 'ls'], ['--remotely'], ['-a', 'x', '--remote']]) {
      expect(leanRemoteRequest(argv), argv.join(' ')).toBeNull();
    }
  });

  it("refuses what guestfish's --listen refuses", () => {
    expect(() => checkListenOptions(parseOptions(['--listen', 'run']))).toThrow(/--listen takes no commands/);
    expect(() => checkListenOptions(parseOptions(['--listen', '-f', 'x.gfs']))).toThrow(/--listen and -f/);
    expect(() => checkListenOptions(parseOptions(['--listen', '--remote=12']))).toThrow(/--listen and --remote/);
    expect(() => checkListenOptions(parseOptions(['--listen', '-a', 'disk.img', '--ro']))).not.toThrow();
    expect(parseOptions(['--listen', '--idle-timeout', '2.5']).idleTimeoutMs).toBe(2500);
    expect(() => parseOptions(['--listen', '--idle-timeout', '0'])).toThrow(/positive number/);
  });
});

describe('the socket directory', () => {
  const saved = { TMPDIR: process.env.TMPDIR, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };
  let base = '';
  const use = (): string => {
    base = mkdtempSync(join(tmpdir(), 'guestsh-unit-resident-'));
    process.env.TMPDIR = base;
    delete process.env.XDG_RUNTIME_DIR;
    return join(base, `guestsh-remote-${process.getuid!()}`);
  };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    rmSync(base, { recursive: true, force: true });
  });

  it('is made 0700 under TMPDIR, named by the uid, or under XDG_RUNTIME_DIR', () => {
    const dir = use();
    expect(makeResidentDir()).toBe(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(makeResidentDir()).toBe(dir);
    process.env.XDG_RUNTIME_DIR = base;
    expect(residentDir()).toBe(join(base, 'guestsh'));
  });

  it('is refused when open to others, or a symbolic link', () => {
    const dir = use();
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    expect(() => makeResidentDir()).toThrow(/mode 0755, not a private directory/);
    rmSync(dir, { recursive: true });
    const elsewhere = join(base, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    symlinkSync(elsewhere, dir);
    expect(() => makeResidentDir()).toThrow(/is a symbolic link/);
  });

  it('refuses a socket path too long for sun_path', () => {
    expect(() => residentPaths(1, `/${'x'.repeat(120)}`)).toThrow(/too long for a Unix socket/);
  });

  it('holds a token only its own value matches', () => {
    const dir = use();
    makeResidentDir();
    const path = join(dir, '1.token');
    const token = writeToken(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(tokenMatches(token, token.toString('hex'))).toBe(true);
    expect(tokenMatches(token, '0'.repeat(64))).toBe(false);
    expect(tokenMatches(token, 'short')).toBe(false);
    expect(tokenMatches(token, undefined)).toBe(false);
    // A second session under the same pid must remove the first's token: never overwrite one silently.
    expect(() => writeToken(path)).toThrow(/EEXIST/);
  });
});

describe('the frames', () => {
  it('come out whole however the bytes are cut, and a huge length is refused', () => {
    const bytes = Buffer.concat([frame(FRAME.stdout, 'hello\n'), frame(FRAME.wantInput), frame(FRAME.exit, '{"code":0}')]);
    const reader = new FrameReader();
    const got = [...bytes].flatMap((b) => reader.push(Buffer.from([b])));
    expect(got.map((f) => [f.type, f.body.toString()])).toEqual([
      [FRAME.stdout, 'hello\n'],
      [FRAME.wantInput, ''],
      [FRAME.exit, '{"code":0}'],
    ]);
    const huge = Buffer.alloc(5);
    huge[0] = FRAME.stdout;
    huge.writeUInt32BE(FrameReader.MAX + 1, 1);
    expect(() => new FrameReader().push(huge)).toThrow(/frame of/);
  });
});
