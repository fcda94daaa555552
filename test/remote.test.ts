// The resident session: `guestsh --listen` and `guestsh --remote`, on the real
// appliance. Remote commands give what one script gives; concurrent clients
// take turns; another uid cannot get in; a client killed mid-command leaves
// the session usable; the idle timeout, a failing command and SIGTERM end it
// by the transaction rules (discarded: the image byte-identical), `exit` ends
// it committed; guestfish's remote-control usage works with guestsh in
// guestfish's place. After each end: no qemu, no socket, no socket directory.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { txFiles } from '../src/runtime/session/transaction.js';
import { FRAME, frame } from '../src/repl/resident-wire.js';
import { CLI, ext4Image, guestsh, isAlive, isolatedTmpdir, qemuUnder, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp.dir };
// The socket directory then lies in this file's TMPDIR, where a leftover shows.
delete env.XDG_RUNTIME_DIR;
delete env.GUESTFISH_PID;
const socketDir = join(tmp.dir, `guestsh-remote-${process.getuid!()}`);
const started: number[] = [];

afterAll(async () => {
  for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  await until(() => started.every((p) => !isAlive(p)) && qemuUnder(tmp.dir).length === 0, scaled(30_000));
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

const FILES = { '/etc/hostname': 'remote-test\n', '/data/a.txt': 'alpha\n', '/data/b.txt': 'beta\n' };
const pristine = ext4Image(join(tmp.dir, 'pristine.img'), 32, FILES);

function freshImage(name: string): string {
  const path = join(tmp.dir, name);
  copyFileSync(pristine, path);
  return path;
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

/** `guestsh --listen ARGS`: the pid from the snippet, which must be guestfish's exactly. */
async function listen(args: string[]): Promise<number> {
  const r = await guestsh(['--listen', ...args], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const m = /^GUESTFISH_PID=([0-9]+); export GUESTFISH_PID\n$/.exec(r.stdout);
  expect(m, r.stdout).not.toBeNull();
  const pid = Number(m![1]);
  started.push(pid);
  expect(isAlive(pid)).toBe(true);
  return pid;
}

interface Client {
  proc: ChildProcess;
  out: string;
  err: string;
  done: Promise<number>;
}

/** `guestsh --remote=PID ARGS`, its stdin `input` (or nothing). */
function client(pid: number, args: string[], input = ''): Client {
  const proc = spawn('node', [CLI, `--remote=${pid}`, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const c: Client = { proc, out: '', err: '', done: Promise.resolve(0) };
  proc.stdout!.on('data', (d: Buffer) => (c.out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (c.err += d.toString()));
  const bound = setTimeout(() => proc.kill('SIGKILL'), scaled(120_000));
  c.done = new Promise((resolve) => proc.on('close', (code, sig) => {
    clearTimeout(bound);
    resolve(code ?? (sig ? 128 : 1));
  }));
  proc.stdin!.end(input);
  return c;
}

async function remote(pid: number, args: string[], input = ''): Promise<{ code: number; out: string; err: string }> {
  const c = client(pid, args, input);
  const code = await c.done;
  return { code, out: c.out, err: c.err };
}

/** The session is gone, and so is everything it held. */
async function gone(pid: number, image?: string): Promise<void> {
  expect(await until(() => !isAlive(pid), scaled(60_000))).toBe(true);
  expect(await until(() => qemuUnder(tmp.dir).length === 0, scaled(20_000))).toBe(true);
  expect(existsSync(socketDir)).toBe(false);
  if (image) {
    const f = txFiles(image);
    for (const p of [f.overlay, f.journal, f.lock]) expect(existsSync(p), p).toBe(false);
  }
}

const SCRIPT = [
  'run',
  'mount /dev/sda /',
  'cat /etc/hostname',
  'ls /data',
  'write /greeting "hello from far away"',
  'cat /greeting',
  'mkdir-p /made/here',
  'is-dir /made/here',
  'checksum sha256 /data/a.txt',
  'echo done',
];

describe('one resident session', () => {
  const image = freshImage('main.img');
  let pid = 0;

  it('runs a sequence of remote commands as one script runs them', async () => {
    const viaScript = freshImage('script.img');
    writeFileSync(join(tmp.dir, 'commands.gfs'), `${SCRIPT.join('\n')}\n`);
    const local = await guestsh(['--format=raw', '-a', viaScript, '-f', join(tmp.dir, 'commands.gfs')], env);
    expect(local.stderr).toBe('');
    expect(local.code).toBe(0);
    expect(local.stdout).toContain('hello from far away');

    pid = await listen(['--format=raw', '-a', image]);
    // Each line its own guestsh process, words as a POSIX shell splits them.
    let out = '';
    for (const line of SCRIPT) {
      const words = execFileSync('sh', ['-c', `printf '%s\\0' ${line}`]).toString().split('\0').slice(0, -1);
      const r = await remote(pid, words);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      out += r.out;
    }
    expect(out).toBe(local.stdout);
  });

  it('takes concurrent clients one at a time, in full, in the order they came', async () => {
    const script = (who: string): string =>
      ['write-append /order "' + who + '1 "', 'echo ' + who + ' started', 'sleep 1', 'cat /etc/hostname', 'write-append /order "' + who + '2 "', 'echo ' + who + ' ended', ''].join('\n');
    const a = client(pid, [], script('A'));
    const b = client(pid, [], script('B'));
    expect(await a.done).toBe(0);
    expect(await b.done).toBe(0);
    expect(a.err + b.err).toBe('');
    // (cat prints the file and a newline, as guestfish does.)
    expect(a.out).toBe('A started\nremote-test\n\nA ended\n');
    expect(b.out).toBe('B started\nremote-test\n\nB ended\n');
    // The guest's own record: one client's two writes, then the other's.
    const order = (await remote(pid, ['cat', '/order'])).out;
    expect(['A1 A2 B1 B2 \n', 'B1 B2 A1 A2 \n']).toContain(order);
  });

  // Becoming another uid takes root: run as another user, this shows as skipped, its title saying why.
  it.skipIf(process.getuid!() !== 0)('lets no other uid in (needs root to become uid 65534), and refuses a directory open to others or a wrong token', async () => {
    const socket = join(socketDir, `${pid}.sock`);
    const token = join(socketDir, `${pid}.token`);
    expect(existsSync(socket) && existsSync(token)).toBe(true);
    // Only the socket directory's mode stands in the way: this file's TMPDIR is opened to all for the check.
    chmodSync(tmp.dir, 0o755);
    const asNobody = (cmd: string[], childEnv = env): { code: number; err: string } => {
      try {
        execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], timeout: scaled(30_000) });
        return { code: 0, err: '' };
      } catch (e) {
        const x = e as { status: number | null; stderr: Buffer };
        return { code: x.status ?? 1, err: x.stderr.toString() };
      }
    };
    try {
      const connectAttempt = asNobody(['node', '-e', `require('net').connect(${JSON.stringify(socket)}).on('connect', () => process.exit(0)).on('error', (e) => { console.error(e.code); process.exit(3); })`]);
      expect(connectAttempt).toEqual({ code: 3, err: 'EACCES\n' });
      expect(asNobody(['cat', token]).code).not.toBe(0);
      // guestsh as that uid looks in that uid's own directory: no session there.
      const viaCli = asNobody(['node', CLI, `--remote=${pid}`, 'write', '/intruder', 'x']);
      expect(viaCli.code).toBe(1);
      expect(viaCli.err).toMatch(/no resident session with pid/);
    } finally {
      chmodSync(tmp.dir, 0o700);
    }
    // A directory others can enter: this user's client refuses to trust it.
    chmodSync(socketDir, 0o755);
    try {
      const loose = await remote(pid, ['echo', 'hi']);
      expect(loose.code).not.toBe(0);
      expect(loose.err).toMatch(/mode 0755, not a private directory/);
      expect(loose.out).toBe('');
    } finally {
      chmodSync(socketDir, 0o700);
    }
    // The socket without the token: refused before any command.
    const refused = await new Promise<string>((resolve) => {
      const s = connect(socket);
      let got = '';
      s.on('connect', () => {
        s.write(frame(FRAME.hello, JSON.stringify({ token: '0'.repeat(64), cwd: '/', commands: [['write', '/intruder', 'x']], exitOnError: true })));
      });
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
    });
    expect(refused).toContain('wrong token');
    expect((await remote(pid, ['exists', '/intruder'])).out).toBe('false\n');
  });

  it('stays usable for the next client when one is killed mid-command', async () => {
    const victim = client(pid, [], 'echo holding\nsleep 4\nwrite /after-kill never\n');
    expect(await until(() => victim.out.includes('holding'), scaled(60_000))).toBe(true);
    victim.proc.kill('SIGKILL');
    expect(await victim.done).toBe(128);
    const next = await remote(pid, ['cat', '/etc/hostname']);
    expect(next).toEqual({ code: 0, out: 'remote-test\n\n', err: '' });
    // The killed client's remaining line never ran.
    expect((await remote(pid, ['exists', '/after-kill'])).out).toBe('false\n');
  });

  it('commits at exit, and leaves nothing behind', async () => {
    const before = await sha256(image);
    const r = await remote(pid, ['exit']);
    expect(r).toEqual({ code: 0, out: '', err: '' });
    await gone(pid, image);
    expect(await sha256(image)).not.toBe(before);
    const check = await guestsh(['--ro', '--format=raw', '-a', image, '-m', '/dev/sda', 'cat', '/greeting', ':', 'cat', '/order'], env);
    expect(check.stdout).toMatch(/^hello from far away\n(A1 A2 B1 B2 |B1 B2 A1 A2 )\n$/);
    const after = await remote(pid, ['echo', 'hi']);
    expect(after.code).toBe(1);
    expect(after.err).toMatch(/no resident session with pid/);
  });
});

describe('the end of a resident session by the transaction rules', () => {
  it('ends after the idle timeout, discarding, and cleans up', async () => {
    const image = freshImage('idle.img');
    const before = await sha256(image);
    const pid = await listen(['--format=raw', '-a', image, '-m', '/dev/sda', '--idle-timeout', String(scaled(4_000) / 1000)]);
    expect(qemuUnder(tmp.dir).length).toBeGreaterThan(0);
    expect((await remote(pid, ['write', '/idle', 'x'])).code).toBe(0);
    await gone(pid, image);
    expect(await sha256(image)).toBe(before);
  });

  it('ends at a failing command, as a script stops there: discarded', async () => {
    const image = freshImage('fail.img');
    const before = await sha256(image);
    const pid = await listen(['--format=raw', '-a', image, '-m', '/dev/sda']);
    expect((await remote(pid, ['write', '/x', 'y'])).code).toBe(0);
    // A typo is refused before anything runs (the session checks it: the client has no command
    // table) and ends nothing: the command before it in the same invocation did not run either.
    const typo = await remote(pid, ['write', '/typo-first', 'z', ':', 'wirte', '/x', 'y']);
    expect(typo).toEqual({ code: 1, out: '', err: "guestsh: error: unknown command 'wirte'; did you mean write?\n" });
    expect((await remote(pid, ['exists', '/typo-first'])).out).toBe('false\n');
    // '-cmd' may fail and the session goes on, as in a script.
    const tolerated = await remote(pid, ['--', '-cat', '/missing']);
    expect(tolerated.code).toBe(0);
    expect(tolerated.err).toMatch(/error: .*\/missing/);
    const failed = await remote(pid, ['cat', '/missing']);
    expect(failed.code).toBe(1);
    expect(failed.err).toMatch(/^guestsh: error: .*\/missing/);
    await gone(pid, image);
    expect(await sha256(image)).toBe(before);
  });

  it('ends at SIGTERM before any commit: discarded, a client mid-command told, nothing left', async () => {
    const image = freshImage('term.img');
    const before = await sha256(image);
    const pid = await listen(['--format=raw', '-a', image, '-m', '/dev/sda']);
    expect((await remote(pid, ['write', '/x', 'y'])).code).toBe(0);
    const waiting = client(pid, [], 'echo holding\nsleep 30\n');
    expect(await until(() => waiting.out.includes('holding'), scaled(60_000))).toBe(true);
    process.kill(pid, 'SIGTERM');
    // Told, one way or the other: its call failed as the appliance went, or the session closed on it.
    expect(await waiting.done).toBe(1);
    expect(waiting.err).toMatch(/^guestsh: .*error: /);
    await gone(pid, image);
    expect(await sha256(image)).toBe(before);
  });
});

describe("guestfish's remote-control usage, with guestsh as guestfish", () => {
  it('works unchanged: eval of --listen, add-ro and run remotely, two listeners, the bash cleanup trap', async () => {
    const bin = join(tmp.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'guestfish'), `#!/bin/sh\nexec node ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });
    const disk = freshImage('disk.img');
    const before = await sha256(disk);
    // The usage guestfish(1) shows for remote control, with guestsh answering to the name.
    const script = `set -e
cd ${JSON.stringify(tmp.dir)}
eval "\`guestfish --listen\`"
first=$GUESTFISH_PID
guestfish --remote add-ro disk.img
guestfish --remote run
guestfish --remote lvs
guestfish --remote list-filesystems
guestfish --remote exit

eval "\`guestfish --listen\`"
pid1=$GUESTFISH_PID
eval "\`guestfish --listen\`"
pid2=$GUESTFISH_PID
guestfish --remote=$pid1 echo one
guestfish --remote=$pid2 echo two
guestfish --remote=$pid1 exit
guestfish --remote=$pid2 exit

csh=$(guestfish --listen --csh)
re='^setenv GUESTFISH_PID ([0-9]+)$'
[[ $csh =~ $re ]]
pid3=\${BASH_REMATCH[1]}
guestfish --remote=$pid3 exit

launch=(guestfish --listen --ro -a disk.img)
GUESTFISH_PID=
eval $("\${launch[@]}")
if [ -z "$GUESTFISH_PID" ]; then echo "no listener"; exit 1; fi
cleanup () { guestfish --remote -- exit >/dev/null 2>&1 ||:; }
trap cleanup EXIT ERR
guestfish --remote -- run
guestfish --remote -- mount-ro /dev/sda /
guestfish --remote -- cat /etc/hostname
echo pids $first $pid1 $pid2 $pid3 $GUESTFISH_PID
`;
    const out = execFileSync('bash', ['-c', script], { env: { ...env, PATH: `${bin}:${env.PATH}` }, timeout: scaled(240_000), stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const pids = /pids (\d+) (\d+) (\d+) (\d+) (\d+)\n$/.exec(out);
    expect(pids, out).not.toBeNull();
    started.push(...pids!.slice(1).map(Number));
    expect(out.replace(/pids .*\n$/, '')).toBe('/dev/sda: ext4\none\ntwo\nremote-test\n\n');
    for (const p of pids!.slice(1)) await gone(Number(p));
    expect(await sha256(disk)).toBe(before);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('guestsh-remote'))).toEqual([]);
  });
});
