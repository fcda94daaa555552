// The error dialect of this process. Linked or installed as `guestfish`,
// guestsh prints errors and traces as guestfish does, for the scripts that
// grep or compare them; as `guestsh`, its own one-line errors.

import { basename } from 'node:path';

export type Dialect = 'guestsh' | 'guestfish';

export const processDialect: Dialect = basename(process.argv[1] ?? '') === 'guestfish' ? 'guestfish' : 'guestsh';

/** An error as the one line the user sees: control characters (a newline in a file name) are escaped, not printed. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** The line for an error that ends the command line's run, in the process's dialect. */
export function failureLine(msg: string): string {
  return processDialect === 'guestfish' ? `guestfish: ${msg}\n` : `guestsh: error: ${msg}\n`;
}
