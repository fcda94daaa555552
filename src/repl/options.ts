// guestsh's command-line options (guestfish's) and the commands after them,
// separated by ':' words.

import { UsageError } from '../runtime/errors.js';

export type DriveArg =
  | { kind: 'add'; path: string; format: string | undefined }
  /** -N [FILENAME=]TYPE[:PARAM...]: a prepared disk guestsh creates. */
  | { kind: 'prepared'; path: string; type: string; params: string[] };

export interface MountArg {
  device: string;
  mountpoint: string;
  options: string | undefined;
  fstype: string | undefined;
}

export interface Options {
  drives: DriveArg[];
  mounts: MountArg[];
  readonly: boolean;
  inspector: boolean;
  verbose: boolean;
  trace: boolean;
  help: boolean;
  /** --cmd-help / -h CMD */
  helpCommand: string | null;
  /** -h / --cmd-help without a command: list the commands (guestfish's -h) */
  listCommands: boolean;
  version: boolean;
  file: string | null;
  json: boolean;
  keysFromStdin: boolean;
  echoKeys: boolean;
  autosync: boolean;
  network: boolean;
  progressBars: boolean | null;
  listPrepared: boolean;
  /**
   * What happens to the images' changes at the end: null = the default
   * (commit when every command succeeded; ask at the interactive prompt).
   */
  changes: 'commit' | 'discard' | null;
  /** Run on an overlay that is always discarded, and print what would have changed. */
  dryRun: boolean;
  commands: string[][];
}

export const usage = `usage: guestsh [--options] [CMD ARGS [: CMD ARGS]...]
  -a, --add IMAGE        add a disk image (repeatable; --format applies to the -a after it)
  --format=raw|qcow2|..  force the format of the following -a images (--format alone: detect)
  -N, --new [FILE=]TYPE  create a prepared disk (disk, part, fs, lv, lvfs, bootroot, bootrootlv;
                         -N list shows them), default file name testN.img
  -i, --inspector        inspect the guest and mount its filesystems as it would
  -m, --mount DEV[:MNT[:OPTS[:FSTYPE]]]  mount a filesystem (MNT defaults to /)
  --ro / --rw            open the images read-only (writes go to a discarded overlay) / read-write
  -f, --file SCRIPT      run the commands in SCRIPT (#!/usr/bin/env guestsh -f works)
  --keys-from-stdin      read LUKS passphrases from stdin instead of the terminal
  --echo-keys            echo passphrases as they are typed
  --json                 print each result as one JSON document per line
  -n, --no-sync          do not sync the disks when the session ends
  --network              enable the appliance network
  --progress-bars / --no-progress-bars   force progress bars on or off
  -v, --verbose          show the appliance console and launch details on stderr
  -x                     trace each call and its result on stderr
  --commit / --discard   keep or throw away the images' changes at the end (default: keep them
                         when every command succeeded; the interactive shell asks)
  --dry-run              throw the changes away and print the files that would have changed
  guestsh run [-a IMAGE]... [-i | -m DEV:MNT]... RECIPE.gfs.ts [--param k=v]... [--timeout S] [--memory MB] [--network] [--dry-run] [--json]
  guestsh run --watch …              re-run the recipe on every save, print what each run changed, roll it back
  guestsh init-recipe NAME [DIR]     write a starter recipe with a tsconfig that type-checks it
  guestsh recover IMAGE              finish an interrupted commit, or remove an abandoned run's changes
  guestsh status IMAGE               show the writer, pending changes and interrupted commits of IMAGE
  --help                 this text; -h [CMD]: list the commands, or help on CMD
  -V, --version          the version
Without commands, guestsh runs a script from stdin, or the interactive shell on a terminal.
Commands are libguestfs actions and guestfish commands, e.g.
  guestsh -a disk.img --ro -i cat /etc/hostname
  guestsh -a disk.img --ro run : list-filesystems`;

/** Flags that take no value and may be bundled (-ix). */
const FLAGS: Record<string, (o: Options) => void> = {
  i: (o) => (o.inspector = true),
  r: (o) => (o.readonly = true),
  w: (o) => (o.readonly = false),
  v: (o) => (o.verbose = true),
  x: (o) => (o.trace = true),
  n: (o) => (o.autosync = false),
  V: (o) => (o.version = true),
};

export function parseMount(spec: string): MountArg {
  const [device, mountpoint, options, fstype] = spec.split(':');
  if (!device) throw new UsageError(`-m '${spec}': no device given`);
  return { device, mountpoint: mountpoint || '/', options: options || undefined, fstype: fstype || undefined };
}

export function parseOptions(argv: readonly string[]): Options {
  const o: Options = {
    drives: [],
    mounts: [],
    readonly: false,
    inspector: false,
    verbose: false,
    trace: false,
    help: false,
    helpCommand: null,
    listCommands: false,
    version: false,
    file: null,
    json: false,
    keysFromStdin: false,
    echoKeys: false,
    autosync: true,
    network: false,
    changes: null,
    dryRun: false,
    progressBars: null,
    listPrepared: false,
    commands: [],
  };
  let format: string | undefined;
  let prepared = 1;
  let i = 0;
  const value = (flag: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`option ${flag} needs a value; see guestsh --help`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    switch (name) {
      case '-a':
      case '--add':
        o.drives.push({ kind: 'add', path: value(name, inline), format });
        continue;
      case '--format':
        // guestfish: --format alone (no value) goes back to auto-detection.
        format = inline || undefined;
        continue;
      case '-f':
      case '--file':
        if (o.file !== null) throw new UsageError('only one -f parameter can be given');
        o.file = value(name, inline);
        continue;
      case '-m':
      case '--mount':
        o.mounts.push(parseMount(value(name, inline)));
        continue;
      case '-N':
      case '--new': {
        const v = value(name, inline);
        if (['list', 'help', 'h', '?'].includes(v.toLowerCase())) {
          o.listPrepared = true;
          continue;
        }
        const at = v.indexOf('=');
        const path = at >= 0 ? v.slice(0, at) : `test${prepared}.img`;
        const [type, ...params] = (at >= 0 ? v.slice(at + 1) : v).split(':');
        o.drives.push({ kind: 'prepared', path, type: type!, params });
        prepared++;
        continue;
      }
      case '--help':
        o.help = true;
        continue;
      case '-h':
      case '--cmd-help':
        o.help = true;
        if (inline !== undefined) o.helpCommand = inline;
        else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) o.helpCommand = argv[++i]!;
        else o.listCommands = true;
        continue;
      case '--ro':
        o.readonly = true;
        continue;
      case '--rw':
        o.readonly = false;
        continue;
      case '--inspector':
        o.inspector = true;
        continue;
      case '--verbose':
        o.verbose = true;
        continue;
      case '--version':
        o.version = true;
        continue;
      case '--json':
        o.json = true;
        continue;
      case '--keys-from-stdin':
        o.keysFromStdin = true;
        continue;
      case '--echo-keys':
        o.echoKeys = true;
        continue;
      case '--no-sync':
        o.autosync = false;
        continue;
      case '--network':
        o.network = true;
        continue;
      case '--commit':
        o.changes = 'commit';
        continue;
      case '--discard':
        o.changes = 'discard';
        continue;
      case '--dry-run':
        o.dryRun = true;
        continue;
      case '--progress-bars':
        o.progressBars = true;
        continue;
      case '--no-progress-bars':
        o.progressBars = false;
        continue;
      case '--pipe-error':
      case '--selinux':
      case '--no-dest-paths':
        continue; // accepted for compatibility; no effect in guestsh
    }
    // Bundled short flags: -ix, -rv ...
    if (/^-[a-zA-Z]+$/.test(a) && [...a.slice(1)].every((c) => FLAGS[c])) {
      for (const c of a.slice(1)) FLAGS[c]!(o);
      continue;
    }
    throw new UsageError(`unknown option '${a}'; see guestsh --help`);
  }
  // guestfish's old style: `guestfish -i disk.img` means `-a disk.img -i`.
  if (o.inspector && o.drives.length === 0 && i < argv.length) {
    for (; i < argv.length; i++) o.drives.push({ kind: 'add', path: argv[i]!, format });
    return o;
  }
  let current: string[] = [];
  for (const w of argv.slice(i)) {
    if (w === ':') {
      if (current.length === 0) throw new UsageError('empty command on command line');
      o.commands.push(current);
      current = [];
    } else current.push(w);
  }
  if (current.length) o.commands.push(current);
  return o;
}
