// Chooses KVM or TCG. /dev/kvm can exist and still hang guests (nested KVM on
// these machines), so KVM is proven by booting the appliance kernel to a
// deliberate panic under a short timeout. The verdict is cached per host state.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { delimiter, join } from 'node:path';
import { cacheRoot } from '../cache.js';

export type Accel = 'kvm' | 'tcg';

export interface AccelChoice {
  accel: Accel;
  /** Why, in one line, for the user. */
  reason: string;
  /** True when this call ran the probe (the notice is news), false when cached or forced. */
  probed: boolean;
}

export const QEMU = 'qemu-system-x86_64';
const PROBE_TIMEOUT_MS = 4000;

/** Where $PATH finds qemu-system-x86_64 (what get_hv reports and the saved appliances are keyed by), or null. */
export function qemuPath(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, QEMU);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** Boots `kernel` with no root under KVM; a working KVM reaches the panic within a second. */
function kvmBootsKernel(kernel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const qemu = spawn(
      QEMU,
      ['-no-user-config', '-nodefaults', '-display', 'none', '-machine', 'accel=kvm', '-cpu', 'host', '-m', '256',
        '-no-reboot', '-serial', 'stdio', '-kernel', kernel, '-append', 'console=ttyS0 panic=-1 quiet'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      qemu.kill('SIGKILL');
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    qemu.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (/Kernel panic|VFS: Unable to mount root/.test(out)) done(true);
    });
    qemu.on('error', () => done(false));
    qemu.on('exit', () => done(/Kernel panic|VFS: Unable to mount root/.test(out)));
  });
}

/**
 * What the accelerator is without probing: forced, impossible, or probed
 * before (the verdict is cached per kernel); null when only a probe can tell.
 */
export async function knownAccel(kernel: string, forceTcg = false): Promise<AccelChoice | null> {
  const env = process.env.GUESTSH_ACCEL;
  if (env === 'kvm' || env === 'tcg') return { accel: env, reason: `acceleration forced to ${env} by GUESTSH_ACCEL`, probed: false };
  if (forceTcg) return { accel: 'tcg', reason: 'acceleration forced to tcg by the backend setting force_tcg', probed: false };
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: '/dev/kvm is not usable: using TCG software emulation (slower)', probed: false };
  }
  try {
    const cached = JSON.parse(await readFile(await verdictFile(kernel), 'utf8')) as { accel: Accel; reason: string };
    return { ...cached, probed: false };
  } catch {
    return null;
  }
}

async function verdictFile(kernel: string): Promise<string> {
  const k = await stat(kernel);
  const key = createHash('sha256').update(`${release()}|${kernel}|${k.size}|${k.mtimeMs}`).digest('hex').slice(0, 16);
  return join(cacheRoot(), `accel-${key}.json`);
}

/** `forceTcg`: the session's backend settings hold libguestfs's force_tcg (GUESTSH_ACCEL still wins). */
export async function chooseAccel(kernel: string, forceTcg = false): Promise<AccelChoice> {
  const known = await knownAccel(kernel, forceTcg);
  if (known) return known;
  const ok = await kvmBootsKernel(kernel);
  const verdict = ok
    ? { accel: 'kvm' as const, reason: 'KVM works' }
    : { accel: 'tcg' as const, reason: `KVM did not boot a test kernel within ${PROBE_TIMEOUT_MS / 1000} s: using TCG software emulation (slower)` };
  await mkdir(cacheRoot(), { recursive: true });
  await writeFile(await verdictFile(kernel), JSON.stringify(verdict));
  return { ...verdict, probed: true };
}
