// The recipe sandbox's escape probe: every way out that has been tried, each
// an attempt that must be blocked, against one real appliance (a session
// shared by all attempts, a resumed appliance) and the real host file
// system: the language-level escapes (require, process, imports, dynamic
// import, fetch, constructors), the time and memory limits, host paths
// outside the allowed directories, symbolic links planted in the output
// directory or extracted into it by copy_out, `..` names, device nodes,
// FIFOs and sockets on either side, the host memory a recipe can make the
// host use (log, arguments, results, buffered reads), transfers still running
// at the time limit, and the CLI (a FIFO must not hang the process; syntax
// and import errors come before any launch). Ends by printing
// "sandbox escape probe: N attempts, N blocked" and asserting every one was.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { PathPolicy } from '../src/runtime/recipe/policy.js';
import { runInSandbox, type SandboxResult } from '../src/runtime/recipe/sandbox.js';
import { ext4Image, guestsh, isolatedTmpdir, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
const GiB = 1024 ** 3;
/** A recipe directory: test/recipes copied, with special files planted beside the recipes. */
const rec = join(tmp.dir, 'recipes');
/** Where nothing of a run may land. */
const outside = join(tmp.dir, 'outside');
const victim = join(outside, 'victim');
let img = '';
let imgSha = '';
let s: Session;
let server: Server;

beforeAll(async () => {
  cpSync(resolve(__dirname, 'recipes'), rec, { recursive: true });
  mkdirSync(outside);
  writeFileSync(victim, 'original\n');
  execFileSync('mkfifo', [join(rec, 'fifo')]);
  execFileSync('mknod', [join(rec, 'zero'), 'c', '1', '5']);
  execFileSync('mknod', [join(rec, 'loop'), 'b', '7', '0']);
  symlinkSync('/etc/passwd', join(rec, 'link-out'));
  mkdirSync(join(rec, 'special-tree'));
  writeFileSync(join(rec, 'special-tree', 'plain'), 'plain\n');
  execFileSync('mkfifo', [join(rec, 'special-tree', 'fifo')]);
  // Reads as 8 GiB of zeros at once (a hole), for the transfer still running at the time limit.
  writeFileSync(join(rec, 'big-host'), '');
  truncateSync(join(rec, 'big-host'), 8 * GiB);
  server = createServer();
  await new Promise<void>((r) => server.listen(join(rec, 'sock'), r));

  img = ext4Image(join(tmp.dir, 'probe.img'), 64, { 'etc/hostname': 'probe\n', 'd/sub/f.txt': 'inside\n', 'd/g.txt': 'g\n', 'sink/.keep': '' }, { 'linky/out': outside });
  imgSha = await sha256(img);
  s = new Session();
  await s.addDrive(img, { format: 'raw' });
  // A filesystem big enough to upload 8 GiB into (its writes land in the session's overlay).
  await s.addDrive(ext4Image(join(tmp.dir, 'sink.img'), 10 * 1024, {}), { format: 'raw' });
  await s.launch();
  await s.g.mount('/dev/sda', '/');
  await s.g.mount('/dev/sdb', '/sink');
  // Holes: they read as zeros at once, in the guest as on the host.
  for (const [file, size] of [['/big', 8 * GiB], ['/big1', GiB]] as const) {
    await s.g.touch(file);
    await s.g.truncateSize(file, size);
  }
}, scaled(600_000));

afterAll(async () => {
  await s?.close();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  tmp.restore();
});

let outs = 0;
function newOut(): string {
  return mkdtempSync(join(tmp.dir, `out-${++outs}-`));
}

interface Run extends SandboxResult {
  logs: string[];
  out: string;
}

/** Runs one recipe of the copied directory on the shared session; returns once the session has finished every call the run started. */
async function attempt(file: string, o: { params?: Record<string, string>; out?: string; memoryMb?: number; timeoutMs?: number } = {}): Promise<Run> {
  const out = o.out ?? newOut();
  const logs: string[] = [];
  const r = await runInSandbox({
    entry: join(rec, file),
    params: o.params ?? {},
    target: s,
    policy: await PathPolicy.create(rec, out),
    memoryMb: o.memoryMb ?? 128,
    timeoutMs: o.timeoutMs ?? 20_000,
    log: (l) => logs.push(l),
  });
  // guestfsd serves one call at a time: this answers only after what the run left running.
  await s.g.pingDaemon();
  return { ...r, logs, out };
}

function refused(r: Run, re: RegExp): void {
  expect(r.ok, String(JSON.stringify(r.value)).slice(0, 200)).toBe(false);
  expect(r.failure!.message).toMatch(re);
}

const names: string[] = [];
const blocked = new Set<string>();
/** One escape attempt: `check` throws (an expect) unless it was blocked. */
function escape(name: string, check: () => Promise<void>, timeout?: number): void {
  names.push(name);
  it(
    name,
    async () => {
      await check();
      blocked.add(name);
    },
    timeout,
  );
}

describe('language and limits', () => {
  const cases: [string, RegExp, { memoryMb?: number; timeoutMs?: number }?][] = [
    ['esc-require.gfs.ts', /require is not defined \(recipes run in a sandbox/],
    ['esc-process.gfs.ts', /process is not defined \(recipes run in a sandbox/],
    ['esc-import-fs.gfs.ts', /cannot import 'node:fs': node modules are not available/],
    ['esc-import-cp.gfs.ts', /cannot import 'child_process': node modules are not available/],
    ['esc-dynamic-import.gfs.ts', /dynamic import\(\) is not available in recipes/],
    ['esc-fetch.gfs.ts', /fetch is not defined/],
    ['esc-import-outside.gfs.ts', /may import only files inside their own directory/],
    ['esc-memory.gfs.ts', /exceeded its memory limit of 64 MB/, { memoryMb: 64 }],
    ['esc-loop.gfs.ts', /ran longer than its time limit of 3 s/, { timeoutMs: 3000 }],
    ['esc-loop-after-await.gfs.ts', /ran longer than its time limit of 3 s/, { timeoutMs: 3000 }],
    ['esc-toplevel-loop.gfs.ts', /ran longer than its time limit of 3 s/, { timeoutMs: 3000 }],
  ];
  for (const [file, re, o] of cases) escape(file, async () => refused(await attempt(file, o), re));

  escape('constructors of bridged values lead back into the isolate, not the host', async () => {
    const r = await attempt('esc-constructor.gfs.ts');
    expect(r.failure).toBeUndefined();
    expect(r.value).toEqual({ p: 'no process', hasRequire: 'undefined', hasProcess: 'undefined' });
  });

  escape('a polluted Object.prototype does not change how values cross the bridge', async () => {
    const r = await attempt('esc-options-pollution.gfs.ts');
    expect(r.failure).toBeUndefined();
    expect(r.value).toEqual({ major: 'bigint', plain: true, isArray: true, hasDeref: 'undefined' });
  });

  for (const which of ['set_hv', 'set_append', 'config', 'launch', 'shutdown', 'add_drive', 'disk_create', 'set_path', 'parse_environment']) {
    escape(`refused action ${which}`, async () => {
      const r = await attempt('refused.gfs.ts', { params: { which } });
      refused(r, new RegExp(`sandbox: ${which} is not allowed in recipes: `));
      expect(r.failure!.recipeLocation?.file).toBe(join(rec, 'refused.gfs.ts'));
      if (which === 'disk_create') expect(existsSync('/tmp/x.img')).toBe(false);
    });
  }
});

describe('host paths', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['upload from an absolute path outside', { src: '/etc/passwd' }, /outside the recipe's directory/],
    ['upload from ../ outside', { src: '../outside/victim' }, /outside the recipe's directory/],
    ['download to an absolute path outside', { dst: join(outside, 'download') }, /outside the run's output directory/],
    ['download to ../ outside', { dst: '../escape-download' }, /outside the run's output directory/],
    ['copy_in from outside', { copyin: '/etc' }, /outside the recipe's directory/],
    ['copy_out to outside', { copyout: outside }, /outside the run's output directory/],
    ['tar_out to outside', { tarout: join(outside, 'etc.tar') }, /outside the run's output directory/],
    ['upload from stdin (-)', { src: '-' }, /not a host file a recipe can read/],
    ['upload through a symbolic link in the recipe directory', { src: 'link-out' }, /upload: host path 'link-out' is a symbolic link/],
    ['upload from a character device', { src: 'zero' }, /upload: host path 'zero' is a character device; recipes read only regular files/],
    ['upload from a block device', { src: 'loop' }, /upload: host path 'loop' is a block device/],
    ['upload from a FIFO', { src: 'fifo' }, /upload: host path 'fifo' is a FIFO/],
    ['upload from a socket', { src: 'sock' }, /upload: host path 'sock' is a socket/],
    ['tar_in from a FIFO', { tarin: 'fifo' }, /tar_in: host path 'fifo' is a FIFO/],
    ['copy_in of a tree holding a FIFO', { copyin: 'special-tree' }, /copy_in: host path 'special-tree\/fifo' is a FIFO/],
    ['copy_out of a name ending in ..', { from: '/d/sub/..', copyout: '.' }, /copy_out: '\/d\/sub\/\.\.' ends in '\.\.'/],
  ];
  for (const [name, params, re] of cases) {
    escape(name, async () => {
      const r = await attempt('upload-path.gfs.ts', { params });
      refused(r, re);
      expect(readdirSync(outside).sort()).toEqual(['victim']);
      // Nothing beside the output directories either (a `..` would land there).
      expect(readdirSync(tmp.dir).filter((f) => !/^(out-\d+-|cli-|recipes$|outside$|probe\.img|sink\.img|cli\.img$|guestsh-)/.test(f))).toEqual([]);
    });
  }

  /** An output directory with `name` planted in it by `plant`. */
  function plantedOut(plant: (out: string) => void): string {
    const out = newOut();
    plant(out);
    return out;
  }

  escape('download onto a symbolic link planted in the output directory', async () => {
    const out = plantedOut((o) => symlinkSync(victim, join(o, 'evil')));
    refused(await attempt('upload-path.gfs.ts', { out, params: { dst: 'evil' } }), /download: host path 'evil' is a symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('original\n');
  });

  escape('copy_out of a file onto a symbolic link planted in the output directory', async () => {
    const out = plantedOut((o) => symlinkSync(victim, join(o, 'hostname')));
    refused(await attempt('upload-path.gfs.ts', { out, params: { copyout: '.' } }), /copy_out: host path '\.\/hostname' is a symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('original\n');
  });

  escape('copy_out of a directory into a symbolic link planted as its name', async () => {
    const out = plantedOut((o) => symlinkSync(outside, join(o, 'd')));
    refused(await attempt('upload-path.gfs.ts', { out, params: { from: '/d', copyout: '.' } }), /copy_out: host path '\.\/d' is a symbolic link/);
    expect(readdirSync(outside)).toEqual(['victim']);
  });

  escape('copy_out into a directory reached through a planted symbolic link', async () => {
    const out = plantedOut((o) => symlinkSync(outside, join(o, 'via')));
    refused(await attempt('upload-path.gfs.ts', { out, params: { from: '/d', copyout: 'via/x' } }), /host path 'via\/x' leads through 'via', which is a symbolic link/);
    expect(readdirSync(outside)).toEqual(['victim']);
  });

  escape('download into a device node planted in the output directory', async () => {
    const out = plantedOut((o) => execFileSync('mknod', [join(o, 'null'), 'c', '1', '3']));
    refused(await attempt('upload-path.gfs.ts', { out, params: { dst: 'null' } }), /download: host path 'null' is a character device; recipes write only regular files/);
    expect(lstatSync(join(out, 'null')).isCharacterDevice()).toBe(true);
  });

  escape('download into a FIFO planted in the output directory', async () => {
    const out = plantedOut((o) => execFileSync('mkfifo', [join(o, 'pipe')]));
    refused(await attempt('upload-path.gfs.ts', { out, params: { dst: 'pipe' } }), /download: host path 'pipe' is a FIFO/);
  });

  describe('a symbolic link that copy_out extracted from the guest', () => {
    let out = '';
    beforeAll(async () => {
      out = newOut();
      // Extracting the guest's link is allowed: it is stored as a link, and nothing follows it.
      const r = await attempt('upload-path.gfs.ts', { out, params: { from: '/linky', copyout: '.' } });
      expect(r.failure).toBeUndefined();
      expect(lstatSync(join(out, 'linky', 'out')).isSymbolicLink()).toBe(true);
    });

    escape('cannot redirect a later download', async () => {
      refused(await attempt('upload-path.gfs.ts', { out, params: { dst: 'linky/out/x' } }), /leads through 'linky\/out', which is a symbolic link/);
      expect(readdirSync(outside)).toEqual(['victim']);
    });

    escape('cannot redirect a later copy_out', async () => {
      refused(await attempt('upload-path.gfs.ts', { out, params: { from: '/d', copyout: 'linky/out' } }), /host path 'linky\/out' is a symbolic link/);
      expect(readdirSync(outside)).toEqual(['victim']);
    });

    escape('cannot be read back through by a later upload', async () => {
      refused(await attempt('upload-path.gfs.ts', { out, params: { src: join(out, 'linky', 'out', 'victim') } }), /leads through '.*linky\/out', which is a symbolic link/);
    });
  });
});

describe('host memory and time', () => {
  const rssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
  let before = 0;
  beforeAll(() => {
    before = rssMb();
  });

  const cases: [string, string, RegExp, Record<string, string>?][] = [
    ['a log flood (200 lines of 30 MB)', 'esc-log-flood.gfs.ts', /the recipe logged more than 8 MiB of text, the most one run may log; the recipe was stopped/],
    ['60 concurrent calls with 20 MB arguments', 'esc-huge-args.gfs.ts', /g\.write: its arguments take more than 16 MiB, the most one call may pass with --memory 128/],
    ['an argument that lies about its size (proxy)', 'esc-args-proxy.gfs.ts', /g\.mkdirP: its arguments take more than 16 MiB/],
    ['read_file of a 1 GiB guest file', 'esc-big-read.gfs.ts', /read_file: it would hold more than 16 MiB on the host/, { path: '/big1' }],
    ['a 40 MB return value', 'esc-big-return.gfs.ts', /the recipe returned a value of more than 16 MiB/],
  ];
  for (const [name, file, re, params] of cases) {
    escape(name, async () => {
      const r = await attempt(file, { params });
      refused(r, re);
      expect(r.failure!.kind).toBe('memory');
      console.log(`${name}: peak host RSS ${rssMb()} MB`);
    });
  }

  escape('host memory stayed bounded over the attempts above', async () => {
    const peak = rssMb();
    console.log(`host memory: peak RSS ${peak} MB after the memory attempts, ${before} MB before them`);
    // The isolate may hold 128 MB; a call's data crosses as a few copies of at most 16 MiB.
    expect(peak - before).toBeLessThan(512);
  });

  escape('an upload still running at the time limit stops with it (host reads bounded by the limit)', async () => {
    const r = await attempt('upload-path.gfs.ts', { params: { src: 'big-host', to: '/sink/big' }, timeoutMs: 3000 });
    refused(r, /ran longer than its time limit of 3 s/);
    // Stopped, not finished: the guest got less than the 8 GiB.
    expect(Number((await s.g.statns('/sink/big')).st_size)).toBeLessThan(8 * GiB);
  }, scaled(300_000));

  escape('a download still running at the time limit stops with it (host writes bounded by the limit)', async () => {
    const r = await attempt('upload-path.gfs.ts', { params: { from: '/big', dst: 'big.out' }, timeoutMs: 3000 });
    refused(r, /ran longer than its time limit of 3 s/);
    expect(statSync(join(r.out, 'big.out')).size).toBeLessThan(8 * GiB);
  }, scaled(300_000));
});

describe('the CLI', () => {
  escape('guestsh run with an upload from a FIFO ends, and says why', async () => {
    const copy = join(tmp.dir, 'cli.img');
    execFileSync('cp', ['--sparse=always', img, copy]);
    const out = newOut();
    const r = await guestsh(['run', '-a', copy, '-m', '/dev/sda', '--timeout', '10', '--output', out, '--param', 'src=fifo', join(rec, 'upload-path.gfs.ts')]);
    expect(r.stderr).toMatch(/upload: host path 'fifo' is a FIFO/);
    expect(r.code).toBe(1);
  }, scaled(120_000));

  for (const [what, source, re] of [
    ['a syntax error', 'export default async () => {\n  const x = ;\n};\n', /error: SyntaxError: .*bad\.gfs\.ts:2:\d+: /],
    ['an import error', "import { readFileSync } from 'node:fs';\nexport default async () => readFileSync('/etc/passwd', 'utf8');\n", /error: ImportError: .*bad\.gfs\.ts:1:\d+: cannot import 'node:fs'/],
  ] as const) {
    escape(`${what} is reported on stderr before any appliance starts`, async () => {
      const dir = mkdtempSync(join(tmp.dir, 'cli-'));
      writeFileSync(join(dir, 'bad.gfs.ts'), source);
      // An image that does not exist: a launch would fail first, with exit status 4.
      const r = await guestsh(['run', '-a', join(dir, 'missing.img'), join(dir, 'bad.gfs.ts')]);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe('');
      expect(r.code).toBe(2);
    });
  }
});

describe('summary', () => {
  it('every attempt was blocked, and the image never changed', async () => {
    console.log(`sandbox escape probe: ${names.length} attempts, ${blocked.size} blocked`);
    expect(names.filter((n) => !blocked.has(n))).toEqual([]);
    expect(await sha256(img)).toBe(imgSha);
  });
});
