// What the side-by-side benchmarks share: their command-line numbers, the
// median they report, the guestsh CLI they run and the environment that
// keeps libguestfs's tools off the broken KVM.

import { join } from 'node:path';

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
