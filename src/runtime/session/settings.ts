// The handle properties the engine itself reads (the rest live with the
// library-side get_*/set_* actions), with their defaults.

import { defaultMemoryMiB } from '../../../guests/libguestfs/appliance.js';
import type { BackingPolicy } from '../qemu/img.js';

export interface SessionSettings {
  memsize: number;
  smp: number;
  verbose: boolean;
  trace: boolean;
  autosync: boolean;
  network: boolean;
  launchTimeoutMs: number;
  /** libguestfs's backend settings ("name" or "name=value"); launch reads force_tcg. */
  backendSettings: readonly string[];
  /** Resume a saved appliance instead of booting (GUESTSH_SNAPSHOT=0 turns it off). */
  snapshots: boolean;
  /**
   * Write through an overlay that shutdown() merges into the image and
   * close() without shutdown discards. Off: qemu writes the image directly.
   */
  transactions: boolean;
  /** The backing files and external data files an added image may use (recipes: none; --allow-backing: any). */
  backing: BackingPolicy;
  /** Where the session's run directory goes (set_tmpdir, LIBGUESTFS_TMPDIR); null: $TMPDIR. */
  tmpdir: string | null;
}

export function defaultSettings(): SessionSettings {
  return {
    memsize: defaultMemoryMiB,
    smp: 1,
    verbose: false,
    trace: false,
    autosync: true,
    network: false,
    backendSettings: [],
    launchTimeoutMs: Number(process.env.GUESTSH_LAUNCH_TIMEOUT ?? 300) * 1000,
    snapshots: process.env.GUESTSH_SNAPSHOT !== '0',
    transactions: true,
    backing: 'own-directory',
    tmpdir: null,
  };
}
