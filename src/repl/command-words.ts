// The commands on a command line: words split at ':' words
// (`guestsh -a disk.img run : mount /dev/sda1 / : ls /`). The option parser
// and --remote's lean entry (remote.ts) both split this way.

import { UsageError } from '../runtime/errors.js';

export function splitCommands(words: readonly string[]): string[][] {
  const commands: string[][] = [];
  let current: string[] = [];
  for (const w of words) {
    if (w === ':') {
      if (current.length === 0) throw new UsageError('empty command on command line');
      commands.push(current);
      current = [];
    } else current.push(w);
  }
  if (current.length) commands.push(current);
  return commands;
}
