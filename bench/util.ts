// What the side-by-side benchmarks share: their command-line numbers, the
// median they report, the guestsh CLI they run, the environment that keeps
// libguestfs's tools off the broken KVM, timing one command, and reading a
// result back out of an image.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Session } from '../src/index.js';
import type { GuestfsApi } from '../src/spec/api.js';

/** `--name N` from the command line, else `dflt`. */
export const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

export const CLI = join(import.meta.dirname, '..', 'bin', 'guestsh.js');

/** guestfish, virt-customize, …: force TCG, or they hang under the broken KVM. */
export const LIBGUESTFS_ENV = { ...process.env, LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' };

/** Wall time of a command from spawn to exit, in ms, with its stderr; `ok` says which exit codes are success. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, ok = [0]): Promise<{ ms: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => {
      if (!ok.includes(code ?? -1)) reject(new Error(`${cmd} failed (${code}): ${stderr.trim()}`));
      else resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, stderr });
    });
  });
}

/** Opens the Debian test guest's image read-only with its root on / and hands it to `read` (the bench's check of what a tool did). */
export async function readGuest(image: string, read: (g: GuestfsApi) => Promise<void>): Promise<void> {
  const s = new Session();
  try {
    await s.addDrive(image, { readonly: true });
    await s.launch();
    await s.g.mount('/dev/sda2', '/');
    await read(s.g);
  } finally {
    await s.close();
  }
}
