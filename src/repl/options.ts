// guestsh's command-line options (guestfish's, as far as they are built) and
// the commands after them, separated by ':' words.

import { UsageError } from '../runtime/errors.js';

export interface DriveArg {
  path: string;
  format: string | undefined;
}

export interface Options {
  drives: DriveArg[];
  readonly: boolean;
  verbose: boolean;
  trace: boolean;
  help: boolean;
  version: boolean;
  commands: string[][];
}

export const usage = `usage: guestsh [-a IMAGE]... [--format=raw|qcow2|..] [--ro|--rw] [-v] [-x] [CMD ARGS [: CMD ARGS]...]
  -a, --add IMAGE   add a disk image (repeatable; --format applies to the -a options after it)
  --ro / --rw       open the images read-only (writes go to a discarded overlay) / read-write
  -v, --verbose     show the appliance console and launch details on stderr
  -x                trace each call and its result on stderr
  -V, --version     print the version
Commands are libguestfs actions in guestfish syntax, e.g.
  guestsh -a disk.img --ro run : list-filesystems : cat /etc/hostname`;

export function parseOptions(argv: readonly string[]): Options {
  const o: Options = { drives: [], readonly: false, verbose: false, trace: false, help: false, version: false, commands: [] };
  let format: string | undefined;
  let i = 0;
  const value = (flag: string): string => {
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`option ${flag} needs a value; see guestsh --help`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-a' || a === '--add') o.drives.push({ path: value(a), format });
    else if (a.startsWith('--add=')) o.drives.push({ path: a.slice(6), format });
    else if (a === '--format') format = value(a) || undefined;
    else if (a.startsWith('--format=')) format = a.slice(9) || undefined;
    else if (a === '--ro' || a === '-r') o.readonly = true;
    else if (a === '--rw' || a === '-w') o.readonly = false;
    else if (a === '-v' || a === '--verbose') o.verbose = true;
    else if (a === '-x') o.trace = true;
    else if (a === '-h' || a === '--help') o.help = true;
    else if (a === '-V' || a === '--version') o.version = true;
    else if (a === '--') {
      i++;
      break;
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option '${a}'; see guestsh --help`);
    else break;
  }
  let current: string[] = [];
  for (const w of argv.slice(i)) {
    if (w === ':') {
      if (current.length) o.commands.push(current);
      current = [];
    } else current.push(w);
  }
  if (current.length) o.commands.push(current);
  return o;
}
