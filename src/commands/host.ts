// Host processes and host output for commands: /bin/sh for `!cmd`, pipelines,
// editors and pagers, and writes that tolerate a pipeline closing early.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Writes to `out`, waiting for it to drain; a pipeline that exited early (| head) silently drops the rest, as guestfish does. */
export async function writeTo(out: Writable, data: string | Uint8Array): Promise<void> {
  if (out.destroyed || out.writableEnded) return;
  if (out.write(data)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

/** How a /bin/sh child is wired: all inherited, its stdin fed by us, or its stdout read by us. */
export type ShStdio = 'inherit' | 'pipe-in' | 'capture';

export function sh(command: string, stdio: ShStdio): ChildProcess {
  return spawn('/bin/sh', ['-c', command], {
    stdio: stdio === 'inherit' ? 'inherit' : stdio === 'pipe-in' ? ['pipe', 'inherit', 'inherit'] : ['inherit', 'pipe', 'inherit'],
  });
}

/** The child's exit status (128 when a signal ended it). */
export async function waitExit(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null) return child.exitCode;
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return code ?? (signal ? 128 : 1);
}

/** A word for /bin/sh that stays one argument whatever it contains. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}
