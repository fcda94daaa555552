// guestsh/firstboot proven by booting: a recipe installs firstboot scripts in
// the `bootable` guest (a real Debian with kernel, initramfs and systemd),
// qemu boots it under TCG with the guest's own kernel, systemd runs the
// scripts and the last one powers the guest off; a guestsh Session then reads
// back the marker, the order they ran in, the log and the run-once state.
// A second boot, with one more script added, shows the first two do not run
// again.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/index.js';
import { runRecipe } from '../src/runtime/recipe/index.js';
import { type BootableImages, type BootableTruth, ensureBootableGuest } from '../testdata/index.js';
import { isAlive, isolatedTmpdir } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
const RECIPE = resolve(__dirname, 'recipes', 'firstboot-marker.gfs.ts');
const MARKER = '/root/firstboot-marker';
const MARKER_TEXT = 'firstboot ran in a booted guest';
const ORDER = '/root/firstboot-order';
const FIRSTBOOT_DIR = '/usr/lib/guestsh-firstboot';
const FIRSTBOOT_LOG = '/var/log/guestsh-firstboot.log';
// Boot to power-off took 33-55 s under TCG here; the machine is shared and slow under load.
const BOOT_TIMEOUT_MS = 8 * 60_000;

let guest: BootableImages;
let truth: BootableTruth;
let disk = '';
const qemus = new Set<ChildProcess>();
const pids: number[] = [];

beforeAll(async () => {
  guest = await ensureBootableGuest();
  truth = JSON.parse(readFileSync(guest.truth, 'utf8')) as BootableTruth;
  // A copy, not an overlay on the cached image: the recipe commits into it and the guest writes to it.
  disk = join(tmp.dir, 'bootable.qcow2');
  execFileSync('cp', [guest.qcow2, disk]);
}, scaled(900_000));

afterAll(async () => {
  try {
    for (const q of qemus) q.kill('SIGKILL');
    // Sessions' run directories are removed by their watchdogs moments after close.
    for (let i = 0; i < 50 && (pids.some(isAlive) || tmp.leftovers().length > 0); i++) await new Promise((r) => setTimeout(r, 100));
    expect(pids.filter(isAlive)).toEqual([]);
    expect(tmp.leftovers()).toEqual([]);
  } finally {
    tmp.restore();
  }
});

function tail(file: string, lines = 60): string {
  if (!existsSync(file)) return '(no console log)';
  return readFileSync(file, 'utf8').replace(/\r/g, '').split('\n').slice(-lines).join('\n');
}

interface Boot {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  ms: number;
  consoleLog: string;
  stderr: string;
}

/** Boots the disk with the guest's own kernel under TCG; resolves when qemu exits (by itself, or killed at the timeout). */
function boot(name: string): Promise<Boot> {
  const consoleLog = join(tmp.dir, `${name}-console.log`);
  const args = [
    '-no-user-config', '-nodefaults', '-display', 'none',
    '-machine', 'pc,accel=tcg', '-cpu', 'max,la57=off', '-smp', '1', '-m', '1024',
    '-no-reboot', '-rtc', 'driftfix=slew',
    '-object', 'rng-random,filename=/dev/urandom,id=rng0', '-device', 'virtio-rng-pci,rng=rng0',
    '-drive', `file=${disk.replaceAll(',', ',,')},format=qcow2,if=virtio,cache=writeback`,
    '-serial', `file:${consoleLog}`,
    '-kernel', guest.kernel, '-initrd', guest.initrd,
    // panic=-1: a kernel panic reboots at once, and -no-reboot turns that into qemu exiting.
    '-append', `${truth.boot.commandLine} panic=-1 systemd.show_status=1`,
  ];
  const started = Date.now();
  const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  qemus.add(q);
  if (q.pid !== undefined) pids.push(q.pid);
  let stderr = '';
  q.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    q.kill('SIGKILL');
  }, BOOT_TIMEOUT_MS);
  return new Promise((done) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      qemus.delete(q);
      done({ code, signal, timedOut, ms: Date.now() - started, consoleLog, stderr });
    };
    q.on('error', (e) => {
      stderr += String(e);
      finish(null, null);
    });
    q.on('exit', finish);
  });
}

/** What the guest left behind, read with a guestsh Session (read-only). */
async function readGuest(): Promise<{ marker: string | null; order: string; log: string; pending: string[]; done: string[]; kernelSha: string; initrdSha: string }> {
  const s = new Session();
  try {
    await s.addDrive(disk, { format: 'qcow2', readonly: true });
    await s.launch();
    await s.g.mount('/dev/sda2', '/');
    await s.g.mount('/dev/sda1', '/boot');
    const read = async (p: string): Promise<string> => ((await s.g.exists(p)) ? s.g.cat(p) : '');
    return {
      marker: (await s.g.exists(MARKER)) ? await s.g.cat(MARKER) : null,
      order: await read(ORDER),
      log: await read(FIRSTBOOT_LOG),
      pending: (await s.g.ls(`${FIRSTBOOT_DIR}/scripts.d`)).sort(),
      done: (await s.g.ls(`${FIRSTBOOT_DIR}/done.d`)).sort(),
      kernelSha: await s.g.checksum('sha256', truth.boot.guestKernel),
      initrdSha: await s.g.checksum('sha256', truth.boot.guestInitrd),
    };
  } finally {
    const pid = s.qemuPid;
    await s.close();
    if (pid !== null) pids.push(pid);
  }
}

async function installScripts(round: string): Promise<unknown> {
  const logs: string[] = [];
  // runRecipe commits with Session.shutdown() and leaves a session it made
  // itself unclosed after a commit (its run directory then lasts until this
  // process exits); with our own session, close() below removes it.
  const session = new Session();
  let r: Awaited<ReturnType<typeof runRecipe>>;
  try {
    r = await runRecipe({
      session,
      recipe: RECIPE,
      images: [{ path: disk, format: 'qcow2' }],
      mounts: [
        { device: '/dev/sda2', mountpoint: '/' },
        { device: '/dev/sda1', mountpoint: '/boot' },
      ],
      params: { round, marker: MARKER, text: MARKER_TEXT, order: ORDER },
      outputDir: tmp.dir,
      timeoutMs: 120_000,
      log: (l) => logs.push(l),
    });
  } finally {
    await session.close();
  }
  expect(r.failure?.message ?? null, logs.join('\n')).toBeNull();
  expect(r.committed).toBe(true);
  return r.value;
}

function expectPoweredOff(b: Boot, what: string): void {
  const context = `${what}: qemu ${b.timedOut ? `killed after ${BOOT_TIMEOUT_MS / 1000} s` : `exited (code ${b.code}, signal ${b.signal})`} after ${Math.round(b.ms / 1000)} s\nqemu stderr: ${b.stderr.trim() || '(none)'}\n--- serial console, last lines ---\n${tail(b.consoleLog)}`;
  expect(b.timedOut, context).toBe(false);
  expect(b.code, context).toBe(0);
  // A clean power-off, not a panic (which -no-reboot also turns into an exit).
  expect(readFileSync(b.consoleLog, 'utf8'), context).toMatch(/reboot: Power down/);
  expect(readFileSync(b.consoleLog, 'utf8'), context).not.toMatch(/Kernel panic/);
}

function starts(log: string): string[] {
  return [...log.matchAll(/guestsh-firstboot: (\S+): starting/g)].map((m) => m[1]!);
}

describe('firstboot in a booted guest', () => {
  it('the guest boots, runs both scripts in order at first boot, powers itself off; they move to done.d', async () => {
    expect(await installScripts('1')).toEqual({ pending: ['0001-marker', '0002-echo'], done: [] });
    const b = await boot('boot1');
    console.log(`first boot: boot to power-off ${(b.ms / 1000).toFixed(1)} s under TCG`);
    expectPoweredOff(b, 'first boot');
    const g = await readGuest();
    const context = `firstboot log:\n${g.log}\n--- serial console, last lines ---\n${tail(b.consoleLog)}`;
    // The kernel the test booted is the one in the image.
    expect([g.kernelSha, g.initrdSha]).toEqual([truth.boot.kernelSha256, truth.boot.initrdSha256]);
    expect(g.marker, context).toBe(`${MARKER_TEXT}\n`);
    expect(g.order, context).toBe('1 marker\n1 poweroff\n');
    expect(starts(g.log), context).toEqual(['0001-marker', '0002-echo']);
    expect(g.log, context).toMatch(/0001-marker: exit status 0/);
    expect(g.log, context).toMatch(/0002-echo: exit status 0/);
    // systemd started it, through the unit firstboot installed (its Description on the console).
    expect(readFileSync(b.consoleLog, 'utf8'), context).toMatch(/guestsh first-boot scripts/);
    expect(g.pending, context).toEqual([]);
    expect(g.done, context).toEqual(['0001-marker', '0002-echo']);
  }, scaled(900_000));

  it('run once: at the second boot only a newly added script runs', async () => {
    expect(await installScripts('2')).toEqual({ pending: ['0003-echo'], done: ['0001-marker', '0002-echo'] });
    const b = await boot('boot2');
    console.log(`second boot: boot to power-off ${(b.ms / 1000).toFixed(1)} s under TCG`);
    expectPoweredOff(b, 'second boot');
    const g = await readGuest();
    const context = `firstboot log:\n${g.log}\n--- serial console, last lines ---\n${tail(b.consoleLog)}`;
    expect(g.order, context).toBe('1 marker\n1 poweroff\n2 poweroff\n');
    expect(starts(g.log), context).toEqual(['0001-marker', '0002-echo', '0003-echo']);
    expect(g.marker, context).toBe(`${MARKER_TEXT}\n`);
    expect(g.pending, context).toEqual([]);
    expect(g.done, context).toEqual(['0001-marker', '0002-echo', '0003-echo']);
  }, scaled(900_000));
});
