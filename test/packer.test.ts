// guestsh as the post-processor of real Packer builds (Debian's packer 1.6.6,
// offline): the templates in scripts-examples/packer run as they are, with
// guestsh behind Packer's shell-local post-processor finding the image in
// Packer's manifest. Packer runs with a private HOME and plugin cache; guestsh
// keeps the suite's appliance cache so it resumes a saved appliance.
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { cacheRoot } from '../src/runtime/cache.js';
import { type BootableImages, type BootableTruth, type DebianImages, ensureBootableGuest, ensureGuest } from '../testdata/index.js';
import { CLI, guestsh, isolatedTmpdir, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
const TEMPLATES = resolve(__dirname, '..', 'scripts-examples', 'packer');
const THROWS = resolve(__dirname, 'recipes', 'throws.gfs.ts');
const GUESTSH = `node ${CLI}`;

let debian: DebianImages;
let bootable: BootableImages;
let bootTruth: BootableTruth;
let works = 0;

beforeAll(async () => {
  debian = await ensureGuest('debian');
  bootable = await ensureBootableGuest();
  bootTruth = JSON.parse(readFileSync(bootable.truth, 'utf8')) as BootableTruth;
}, scaled(900_000));

afterAll(() => {
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

/** A fresh working directory for one Packer run, with Packer's own HOME and plugin cache inside it. */
function workDir(): string {
  const dir = join(tmp.dir, `work-${++works}`);
  mkdirSync(join(dir, 'home'), { recursive: true });
  return dir;
}

function packerEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: join(dir, 'home'),
    PACKER_CACHE_DIR: join(dir, 'packer-cache'),
    CHECKPOINT_DISABLE: '1',
    // guestsh under Packer's private HOME still finds the suite's appliance and saved appliances.
    GUESTSH_CACHE: cacheRoot(),
  };
}

interface Run {
  code: number;
  output: string;
  ms: number;
}

/** Seconds between the first output line matching `from` and the next one after it matching `to` (-timestamp-ui's stamps). */
function span(output: string, from: RegExp, to: RegExp): number {
  const lines = output.split('\n');
  const i = lines.findIndex((l) => from.test(l));
  const j = lines.findIndex((l, k) => k > i && to.test(l));
  const at = (l: string | undefined): number => Date.parse(/^(\S+Z): /.exec(l ?? '')?.[1] ?? '');
  return (at(lines[j]) - at(lines[i])) / 1000;
}

/** `packer build` in `dir`, bounded (scaled); stdout and stderr together, as a CI log shows them (each line time-stamped). */
function packer(dir: string, args: string[]): Promise<Run> {
  const t0 = Date.now();
  return new Promise((done) => {
    execFile('packer', ['build', '-color=false', '-timestamp-ui', ...args], { cwd: dir, env: packerEnv(dir), timeout: scaled(480_000), maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      done({ code: typeof code === 'number' ? code : -1, output: `${stdout}${stderr}`, ms: Date.now() - t0 });
    });
  });
}

interface ManifestBuild {
  name: string;
  builder_type: string;
  packer_run_uuid: string;
  files: { name: string; size: number }[];
}
const manifestBuilds = (dir: string): ManifestBuild[] =>
  (JSON.parse(readFileSync(join(dir, 'packer-manifest.json'), 'utf8')) as { builds: ManifestBuild[] }).builds;

/** Reads files of images read-only through a guestsh session: for each image, each path's content (null: absent). */
async function readBack(images: string[], paths: string[]): Promise<(string | null)[][]> {
  const s = new Session();
  try {
    for (const img of images) await s.addDrive(img, { readonly: true, format: 'qcow2' });
    await s.launch();
    const out: (string | null)[][] = [];
    for (let i = 0; i < images.length; i++) {
      await s.g.mount(`/dev/sd${String.fromCharCode(97 + i)}2`, '/');
      const row: (string | null)[] = [];
      for (const p of paths) row.push((await s.g.exists(p)) ? await s.g.cat(p) : null);
      out.push(row);
      await s.g.umountAll();
    }
    return out;
  } finally {
    await s.close();
  }
}

describe('template 1: null builder + artifice + guestsh sysprep + checksum + manifest', () => {
  it('sysprep changes the image as its result says, the result says committed, the checksum is the image\'s', { timeout: scaled(600_000) }, async () => {
    const dir = workDir();
    const image = join(dir, 'disk.qcow2');
    copyFileSync(debian.qcow2, image);
    const run = await packer(dir, ['-var', `image=${image}`, '-var', `guestsh=${GUESTSH}`, join(TEMPLATES, 'sysprep-image.pkr.hcl')]);
    console.log(`template 1 (HCL2): packer start to exit ${(run.ms / 1000).toFixed(1)} s`);
    expect(run.code, run.output).toBe(0);

    const result = JSON.parse(readFileSync(join(dir, 'guestsh-result.json'), 'utf8')) as {
      ok: boolean; committed: boolean; exitCode: number; recipe: string; error: unknown;
      images: { path: string; format: string }[]; packer: { build: string; builderType: string; runUuid: string };
      value: { op: string; action: string; path: string }[]; changeSummary: { changes: number; byAction: Record<string, number> };
      timings: { totalMs: number };
    };
    expect(result).toMatchObject({ ok: true, committed: true, exitCode: 0, recipe: 'guestsh/sysprep', error: null });
    expect(result.images).toEqual([{ path: image, format: 'qcow2' }]);
    expect(result.packer).toMatchObject({ build: 'image', builderType: 'null' });
    console.log(`  of which guestsh ${(result.timings.totalMs / 1000).toFixed(1)} s`);
    const removed = result.value.filter((c) => c.action === 'removed').map((c) => c.path);
    expect(removed.length).toBeGreaterThan(0);
    expect(result.changeSummary.changes).toBe(result.value.length);
    // With --json, everything guestsh wrote to stderr (Packer shows it) is a JSON line.
    const guestshLines = run.output.split('\n').filter((l) => l.includes('(shell-local): {'));
    expect(guestshLines.length).toBeGreaterThan(0);
    for (const l of guestshLines) expect(() => JSON.parse(l.slice(l.indexOf('{')))).not.toThrow();
    expect(guestshLines.some((l) => l.includes('"event":"progress","stage":"commit"'))).toBe(true);

    // Each file the result says it removed was in the base image and is gone from the built one.
    const [before, after] = await readBack([debian.qcow2, image], removed);
    expect(before!.every((c) => c !== null)).toBe(true);
    expect(after).toEqual(removed.map(() => null));

    const [hash, named] = readFileSync(join(dir, 'image.sha256'), 'utf8').trim().split(/\s+/);
    expect(hash).toBe(await sha256(image));
    expect(resolve(dir, named!)).toBe(image);
    const last = manifestBuilds(dir).at(-1)!;
    expect(last.packer_run_uuid).toBe(result.packer.runUuid);
    expect(last.files.map((f) => f.name)).toEqual([image, 'image.sha256']);
  });

  it('a recipe that throws fails the Packer build, names its file:line, and leaves the image byte-identical', { timeout: scaled(600_000) }, async () => {
    const dir = workDir();
    const image = join(dir, 'disk.qcow2');
    copyFileSync(debian.qcow2, image);
    const h0 = await sha256(image);
    const run = await packer(dir, ['-var', `image=${image}`, '-var', `guestsh=${GUESTSH}`, '-var', `recipe=${THROWS}`, join(TEMPLATES, 'sysprep-image.json')]);
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toMatch(/throws\.gfs\.ts.*"line":8,"column":9/);
    expect(run.output).toMatch(/boom 1/);
    expect(await sha256(image)).toBe(h0);
    const result = JSON.parse(readFileSync(join(dir, 'guestsh-result.json'), 'utf8')) as { ok: boolean; committed: boolean; exitCode: number; error: { file: string; line: number } };
    expect(result).toMatchObject({ ok: false, committed: false, exitCode: 1, error: { file: THROWS, line: 8 } });
    // The chain stopped at guestsh: no checksum of an image that was not prepared.
    expect(existsSync(join(dir, 'image.sha256'))).toBe(false);
  });

  it('--deadline stops a run before its commit: exit 3, nothing written', { timeout: scaled(300_000) }, async () => {
    const image = join(workDir(), 'disk.qcow2');
    copyFileSync(debian.qcow2, image);
    const h0 = await sha256(image);
    const r = await guestsh(['run', '-a', image, '-i', '--json', '--deadline', '1', 'guestsh/sysprep']);
    expect(r.code, r.stderr).toBe(3);
    const doc = JSON.parse(r.stdout) as { ok: boolean; committed: boolean; error: { kind: string; name: string; message: string } };
    expect(doc).toMatchObject({ ok: false, committed: false, error: { kind: 'timeout', name: 'RunDeadline' } });
    expect(doc.error.message).toMatch(/--deadline of 1 s before the commit began/);
    expect(await sha256(image)).toBe(h0);
  });
});

describe('template 2: qemu builder under TCG, then guestsh sysprep and a customize recipe', () => {
  it('builds, powers off by itself, and the built image is sysprep\'d and customized; the manifest lists it', { timeout: scaled(900_000) }, async () => {
    const dir = workDir();
    const base = join(dir, 'base.qcow2');
    copyFileSync(bootable.qcow2, base);
    // Host keys and a machine id for sysprep to remove: the guest has no sshd of its own.
    const plant = new Session();
    try {
      await plant.addDrive(base, { format: 'qcow2' });
      await plant.launch();
      await plant.g.mount('/dev/sda2', '/');
      await plant.g.mkdirP('/etc/ssh');
      for (const k of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_rsa_key', 'ssh_host_rsa_key.pub']) await plant.g.write(`/etc/ssh/${k}`, `planted ${k}\n`);
      await plant.g.write('/etc/machine-id', '0123456789abcdef0123456789abcdef\n');
      await plant.shutdown();
    } finally {
      await plant.close();
    }
    const h0 = await sha256(base);
    const root = /root=(\S+)/.exec(bootTruth.boot.commandLine)![1]!;
    const run = await packer(dir, [
      '-var', `base_image=${base}`, '-var', `kernel=${bootable.kernel}`, '-var', `initrd=${bootable.initrd}`, '-var', `root=${root}`,
      '-var', `guestsh=${GUESTSH}`, '-var', 'hostname=built-by-packer', join(TEMPLATES, 'build-and-sysprep.pkr.hcl'),
    ]);
    expect(run.code, run.output).toBe(0);
    const build = span(run.output, /Retrieving ISO/, /Running post-processor: +\(type manifest\)/);
    const guestshRuns = span(run.output, /Running post-processor: +\(type shell-local\)/, /Running post-processor: +\(type manifest\)/);
    console.log(`template 2 (qemu, TCG): packer start to exit ${(run.ms / 1000).toFixed(1)} s; the build ~${build} s, the two guestsh runs ~${guestshRuns} s`);
    expect(run.output).toMatch(/Waiting for shutdown/);
    expect(run.output.match(/recipe succeeded: \d+ call\(s\); changes committed/g)).toHaveLength(2);
    // The base image was copied, not changed.
    expect(await sha256(base)).toBe(h0);

    const builds = manifestBuilds(dir);
    const last = builds.at(-1)!;
    expect(last).toMatchObject({ name: 'image', builder_type: 'qemu' });
    expect(last.files.map((f) => f.name)).toEqual(['output-guestsh/image.qcow2']);
    const built = join(dir, 'output-guestsh', 'image.qcow2');
    expect(execFileSync('qemu-img', ['info', '--output=json', built], { encoding: 'utf8' })).toMatch(/"format": "qcow2"/);

    const keys = ['/etc/ssh/ssh_host_ed25519_key', '/etc/ssh/ssh_host_ed25519_key.pub', '/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub'];
    const [before, after] = await readBack([base, built], ['/etc/machine-id', '/etc/hostname', '/etc/motd', ...keys]);
    expect(before![0]).toBe('0123456789abcdef0123456789abcdef\n');
    expect(before!.slice(3).every((k) => k !== null)).toBe(true);
    expect(after).toEqual(['', 'built-by-packer\n', 'Built by Packer, prepared by guestsh.\n', ...keys.map(() => null)]);
  });
});

describe('--packer errors: one line, a documented exit status', () => {
  const manifestWith = (dir: string, builds: unknown[]): void => writeFileSync(join(dir, 'packer-manifest.json'), JSON.stringify({ builds, last_run_uuid: 'run-1' }));
  const inPacker = (dir: string, name: string): NodeJS.ProcessEnv => ({ ...process.env, PACKER_BUILD_NAME: name, PACKER_RUN_UUID: 'run-1', PACKER_BUILDER_TYPE: 'null' });
  const run = (dir: string, env: NodeJS.ProcessEnv, ...more: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile('node', [CLI, 'run', '--packer', '-i', ...more, 'guestsh/sysprep'], { cwd: dir, env, timeout: scaled(60_000) }, (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        done({ code: typeof code === 'number' ? code : -1, stdout, stderr });
      });
    });

  it('no manifest (a real Packer build without the manifest post-processor): 5, naming the manifest and the build', { timeout: scaled(120_000) }, async () => {
    const dir = workDir();
    const image = join(dir, 'disk.qcow2');
    copyFileSync(debian.qcow2, image);
    writeFileSync(
      join(dir, 'no-manifest.pkr.hcl'),
      `source "null" "lonely" {\n  communicator = "none"\n}\nbuild {\n  sources = ["source.null.lonely"]\n  post-processors {\n    post-processor "artifice" {\n      files = ["disk.qcow2"]\n    }\n    post-processor "shell-local" {\n      inline = ["${GUESTSH} run --packer -i guestsh/sysprep"]\n    }\n  }\n}\n`,
    );
    const r = await packer(dir, ['no-manifest.pkr.hcl']);
    const errors = r.output.split('\n').filter((l) => l.includes('guestsh: error:'));
    expect(errors, r.output).toHaveLength(1);
    expect(errors[0]).toMatch(/the Packer manifest 'packer-manifest\.json' does not exist \(looked for the build 'lonely' of Packer run [0-9a-f-]+\)/);
    // shell-local's script stops at the failing command, and Packer reports its status.
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/Script exited with non-zero exit status: 5\b/);
  });

  it('a manifest whose entry lists no disk image: 7, naming each file and why it is not one', async () => {
    const dir = workDir();
    writeFileSync(join(dir, 'disk.sha256'), `${'0'.repeat(64)}\tdisk.qcow2\n`);
    manifestWith(dir, [{ name: 'image', builder_type: 'null', packer_run_uuid: 'run-1', files: [{ name: 'disk.sha256', size: 77 }, { name: 'gone.qcow2', size: 1 }] }]);
    const r = await run(dir, inPacker(dir, 'image'));
    expect(r.code).toBe(7);
    expect(r.stderr.trim().split('\n')).toEqual([
      "guestsh: error: run --packer: the build 'image' of Packer run run-1 in 'packer-manifest.json' lists no disk image ('disk.sha256' is not a disk image (raw, with no partition table or filesystem signature); 'gone.qcow2' does not exist)",
    ]);
  });

  it('an unknown build name: 6, naming it and the entries the run has', async () => {
    const dir = workDir();
    manifestWith(dir, [{ name: 'image', builder_type: 'null', packer_run_uuid: 'run-1', files: [] }, { name: 'old', builder_type: 'null', packer_run_uuid: 'run-0', files: [] }]);
    const r = await run(dir, inPacker(dir, 'other'));
    expect(r.code).toBe(6);
    expect(r.stderr.trim().split('\n')).toEqual([
      "guestsh: error: run --packer: 'packer-manifest.json' has no entry for the build 'other' of Packer run run-1 (this run's entries: 'image'): put a \"manifest\" post-processor before guestsh in the same post-processors block",
    ]);
    // With --json the same failure is a result document on stdout and one error event on stderr.
    const j = await run(dir, inPacker(dir, 'other'), '--json');
    expect(j.code).toBe(6);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, committed: false, exitCode: 6, images: [], error: { name: 'PackerImageNotFound' } });
    const events = j.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; message: string });
    expect(events).toEqual([expect.objectContaining({ event: 'error', message: expect.stringMatching(/no entry for the build 'other'/) })]);
  });
});
