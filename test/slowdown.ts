// How much slower this machine runs the suite right now than the quiet
// machine its waits were set on: every timeout in the tests is a wait on a VM
// or a process, multiplied by this factor, so a loaded or slower machine gets
// longer waits instead of failures. Measured once per run, when vitest loads
// its config (a fixed CPU workload against its time on the reference
// machine, and the load average per core, whichever is worse), and handed to
// the test processes as GUESTSH_TEST_SLOWDOWN.
import { createHash } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';

/** The workload's time on the reference machine (2 cores, quiet). */
const REFERENCE_MS = 45;

export interface Slowdown {
  factor: number;
  cpu: number;
  loadPerCore: number;
}

export function measureSlowdown(): Slowdown {
  const buf = Buffer.alloc(8 << 20, 1);
  createHash('sha256').update(buf).digest(); // warm-up: not the machine's speed
  const t0 = performance.now();
  for (let i = 0; i < 8; i++) createHash('sha256').update(buf).digest();
  const cpu = (performance.now() - t0) / REFERENCE_MS;
  const loadPerCore = loadavg()[0]! / availableParallelism();
  return { factor: Math.round(Math.min(8, Math.max(1, cpu, loadPerCore)) * 100) / 100, cpu, loadPerCore };
}

const factor = Number(process.env.GUESTSH_TEST_SLOWDOWN) || 1;

/** A wait of `ms` on the reference machine, as long as it should be here. */
export function scaled(ms: number): number {
  return Math.round(ms * factor);
}
