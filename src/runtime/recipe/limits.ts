// What a recipe run may cost the host, in one table. The isolate's heap
// limit (--memory) bounds only what lives inside the isolate; every value
// that crosses the bridge is copied on the host side (arguments, results,
// log lines, buffered reads), so those are bounded here too, as a share of
// the same --memory where the cost grows with what the isolate may hold.

const MiB = 1024 * 1024;

export const RECIPE_LIMITS = {
  /** --timeout when not given: the wall time of one run, host-side work included. */
  timeoutMs: 10 * 60 * 1000,
  /** --memory when not given, in MB: the isolate's heap. */
  memoryMb: 128,
  /**
   * The most data one call may carry across the bridge (its arguments, and
   * separately its result or what it buffers on the host on the way), as a
   * share of --memory: a value crosses as up to three host copies
   * (serialised, deserialised, encoded), so two calls in flight stay within
   * about the isolate's own size.
   */
  callDataShare: 1 / 8,
  /**
   * Bridged calls running at once. guestfsd serves one call at a time, so
   * more would only hold their arguments on the host while they queue; the
   * isolate waits instead.
   */
  callsInFlight: 2,
  /** Characters a recipe may log in one run (the log's receiver may keep every line: watch mode, tests). */
  logChars: 8 * MiB,
  /** Characters of a failed run's error name, message and stack that are kept (the rest is cut). */
  errorChars: 64 * 1024,
  /** Bytes per host read or write of a transfer; the stop signal is checked between them. */
  ioChunkBytes: 64 * 1024,
  /** A tar member's metadata kept in memory while extracting (pax records, GNU long names). */
  tarMetaBytes: 1 * MiB,
} as const;

/** The most data one call may carry (arguments, or result) for an isolate of `memoryMb`. */
export function callDataLimit(memoryMb: number): number {
  return Math.floor(memoryMb * MiB * RECIPE_LIMITS.callDataShare);
}

export function formatBytes(n: number): string {
  return n >= MiB && n % MiB === 0 ? `${n / MiB} MiB` : n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${n} bytes`;
}
