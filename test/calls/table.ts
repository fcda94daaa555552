// The call-coverage table's shape. Each case names the public actions it
// exercises, calls them against a live session, and asserts on their results
// (node:assert, so the table can also be loaded outside vitest by
// scripts/api-coverage.ts). The runner checks that every named action was
// really called, so the coverage figure cannot claim an action that a case
// forgot to call.

import type { CallTransfer, Session } from '../../src/runtime/session/session.js';
import type { ArgValue, OptArgs } from '../../src/spec/values.js';

export interface Ctx {
  /** Calls an action (recorded for the coverage check). Results are loosely typed on purpose. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call(name: string, args?: ArgValue[], opt?: OptArgs, transfer?: CallTransfer): Promise<any>;
  /** Expects the call to fail with a message matching `re`; returns the error. */
  fails(re: RegExp, name: string, args?: ArgValue[], opt?: OptArgs): Promise<Error>;
  s: Session;
  /** A host temp dir private to this test file. */
  tmp: string;
  /** Fixture facts (device names, the guest's truth file, …). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  f: Record<string, any>;
}

export interface Case {
  /** Public actions this case exercises (snake_case names as in spec.json). */
  actions: string[];
  /** For the slow ones (LUKS key derivation under TCG). */
  timeoutMs?: number;
  run(c: Ctx): Promise<void>;
}

export type FixtureName = 'config' | 'boot' | 'blank' | 'ext4' | 'guest' | 'lifecycle';

export interface Group {
  fixture: FixtureName;
  /** What the fixture provides, for the test names. */
  title: string;
  cases: Case[];
}
