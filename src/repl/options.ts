// guestsh's command-line options: one table for the shell and every verb.
// Each option is listed once with its names, whether it takes a value, its
// help line and the verbs that accept it; parsing, errors and the --help
// text all come from the table.
//
// Values: `--name=value` or the next word; an optional value (--format, -h)
// is taken from the next word only when that word is not an option
// (--remote's only inline, --remote=PID: its next word is a command).
// Single-letter flags without a value can be bundled (-ix). The shell's
// options end at its first command (commands are separated by ':' words);
// the verbs' options and operands may come in any order. `--` ends the
// options everywhere.

import { fileURLToPath } from 'node:url';
import { UsageError } from '../runtime/errors.js';
import { type MountArg, parseMount } from '../runtime/open/open.js';
import { RECIPE_LIMITS } from '../runtime/recipe/limits.js';
import { type PreparedDisk, preparedDisk } from './prepared.js';
import { HELP_GUIDE } from '../commands/help.js';
import { remotePid } from './resident-wire.js';
import { splitCommands } from './command-words.js';

export type { MountArg };

/** The shell, and the verbs beside it. */
export type Verb = 'shell' | 'run' | 'check' | 'status' | 'recover' | 'init-recipe' | 'batch' | 'worker' | 'mount' | 'umount';

export type DriveArg = { kind: 'add'; path: string; format: string | undefined } | PreparedDisk;

export interface Options {
  drives: DriveArg[];
  mounts: MountArg[];
  readonly: boolean;
  inspector: boolean;
  verbose: boolean;
  trace: boolean;
  help: boolean;
  /** -h CMD / --cmd-help=CMD */
  helpCommand: string | null;
  /** -h / --cmd-help without a command: list the commands (guestfish's -h) */
  listCommands: boolean;
  version: boolean;
  file: string | null;
  json: boolean;
  keysFromStdin: boolean;
  echoKeys: boolean;
  /** --key ID:key:KEY / ID:file:FILE: keys for -i's encrypted devices, by device name or LUKS UUID, tried in order. */
  keySelectors: KeySelector[];
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
  /** Follow backing files (and accept external data files) wherever the images name them. */
  allowBacking: boolean;
  /** The shell's commands, split at ':' words. */
  commands: string[][];
  /** run: --param key=value */
  params: Record<string, string>;
  /** run: false with --no-typecheck */
  typecheck: boolean;
  /** run: --timeout, in milliseconds */
  timeoutMs: number | undefined;
  /** run: --memory, in MB */
  memoryMb: number | undefined;
  /** run: --output */
  outputDir: string | undefined;
  /** run --watch */
  watch: boolean;
  /** run --packer [--manifest PATH]: the images of the Packer build guestsh runs in */
  packer: boolean;
  manifest: string | undefined;
  /** run --result FILE: the result document goes there instead of stdout */
  resultFile: string | undefined;
  /** run --deadline, in milliseconds: the whole run, up to its commit */
  deadlineMs: number | undefined;
  /** recover --abandon */
  abandon: boolean;
  /** batch, worker: --queue redis://HOST:PORT */
  queue: string | undefined;
  /** batch, worker: --concurrency N */
  concurrency: number | undefined;
  /** --listen: start a resident session in the background (repl/resident.ts) */
  listen: boolean;
  /** --listen --csh: print the csh form of the snippet */
  csh: boolean;
  /** --listen --idle-timeout, in milliseconds: the resident session ends after this long without a command */
  idleTimeoutMs: number;
  /** --remote[=PID]: send the commands to a resident session ('env': the one $GUESTFISH_PID names) */
  remote: number | 'env' | null;
  /** The verbs' other words: run's recipe, status's and recover's image, init-recipe's NAME [DIR]. */
  operands: string[];
}

/** What parsing remembers between options: the --format for the next -a, the number of the next -N disk. */
interface ParseState {
  format: string | undefined;
  prepared: number;
}

interface OptionSpec {
  names: readonly string[];
  /** Placeholder of the value in the help text; absent: the option takes no value. */
  value?: string;
  /**
   * The value may be left out: given inline or as a following non-option
   * word; 'inline': only as --name=value (the next word is never taken).
   */
  optional?: true | 'inline';
  help: string;
  verbs: readonly Verb[];
  apply(o: Options, value: string | undefined, st: ParseState): void;
}

const SHELL: Verb[] = ['shell'];
/** --idle-timeout's default: a resident session nobody talks to for 15 minutes has been forgotten. */
const RESIDENT_IDLE_TIMEOUT_S = 15 * 60;
const IMAGES: Verb[] = ['shell', 'run'];
/** The image options `guestsh mount` shares with the shell and run. */
const MOUNTS: Verb[] = [...IMAGES, 'mount'];
const RUN: Verb[] = ['run'];
const ALL: Verb[] = ['shell', 'run', 'check', 'status', 'recover', 'init-recipe', 'batch', 'worker', 'mount', 'umount'];
const BATCH: Verb[] = ['batch', 'worker'];

export interface KeySelector {
  id: string;
  kind: 'key' | 'file';
  value: string;
}

/** guestfish's --key selector: ID:key:KEY_STRING or ID:file:FILENAME (fields split at every ':'). */
function parseKeySelector(v: string): KeySelector {
  const [id, kind, ...rest] = v.split(':');
  if (!id) throw new UsageError(`--key: selector '${v}': missing ID`);
  if (kind === undefined) throw new UsageError(`--key: selector '${v}': missing TYPE (key or file)`);
  if (kind === 'clevis') throw new UsageError(`--key: selector '${v}': clevis (network-bound) decryption is not supported in guestsh; give the key with ID:key:KEY or ID:file:FILE`);
  if (kind !== 'key' && kind !== 'file') throw new UsageError(`--key: selector '${v}': invalid TYPE '${kind}' (key or file)`);
  if (rest.length !== 1) throw new UsageError(`--key: selector '${v}': missing ${kind === 'key' ? 'KEY_STRING' : 'FILENAME'}, or too many fields`);
  return { id, kind, value: rest[0]! };
}

function positiveNumber(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag}: '${v}' is not a positive number`);
  return n;
}

const OPTIONS: readonly OptionSpec[] = [
  { names: ['-a', '--add', '--image'], value: 'IMAGE', help: 'add a disk image (repeatable; --format applies to the -a after it)', verbs: MOUNTS,
    apply: (o, v, st) => void o.drives.push({ kind: 'add', path: imagePath(v!), format: st.format }) },
  { names: ['--format'], value: 'raw|qcow2|..', optional: true, help: 'force the format of the following -a images (--format alone: detect)', verbs: MOUNTS,
    apply: (_o, v, st) => void (st.format = v || undefined) },
  { names: ['-N', '--new'], value: '[FILE=]TYPE', help: 'create a prepared disk (disk, part, fs, lv, lvfs, bootroot, bootrootlv; -N list shows them), default file name testN.img', verbs: SHELL,
    apply: (o, v, st) => {
      if (['list', 'help', 'h', '?'].includes(v!.toLowerCase())) o.listPrepared = true;
      else o.drives.push(preparedDisk(v!, st.prepared++));
    } },
  { names: ['-i', '--inspector'], help: 'inspect the guest and mount its filesystems as it would', verbs: MOUNTS, apply: (o) => void (o.inspector = true) },
  { names: ['-m', '--mount'], value: 'DEV[:MNT[:OPTS[:FSTYPE]]]', help: "mount a filesystem (MNT defaults to /, OPTS to 'ro' with --ro)", verbs: MOUNTS,
    apply: (o, v) => void o.mounts.push(parseMount(v!)) },
  { names: ['--ro', '-r'], help: 'open the images read-only (writes go to a discarded overlay; mount: refused with EROFS)', verbs: MOUNTS, apply: (o) => void (o.readonly = true) },
  { names: ['--rw', '-w'], help: 'open the images read-write (the default)', verbs: SHELL, apply: (o) => void (o.readonly = false) },
  { names: ['-f', '--file'], value: 'SCRIPT', help: 'run the commands in SCRIPT (#!/usr/bin/env guestsh -f works)', verbs: SHELL,
    apply: (o, v) => {
      if (o.file !== null) throw new UsageError('only one -f parameter can be given');
      o.file = v!;
    } },
  { names: ['--allow-backing'], help: "follow the images' backing files and external data files anywhere (default: only in the image's directory; run: none)",
    verbs: MOUNTS, apply: (o) => void (o.allowBacking = true) },
  { names: ['--keys-from-stdin'], help: 'read LUKS passphrases from stdin (one a line) instead of the terminal', verbs: MOUNTS, apply: (o) => void (o.keysFromStdin = true) },
  { names: ['--echo-keys'], help: 'echo passphrases as they are typed', verbs: MOUNTS, apply: (o) => void (o.echoKeys = true) },
  { names: ['--key'], value: 'ID:key:KEY|ID:file:FILE', help: "a key for -i's encrypted device ID (a device name or a LUKS UUID; repeatable, tried in order)", verbs: MOUNTS,
    apply: (o, v) => void o.keySelectors.push(parseKeySelector(v!)) },
  { names: ['--param'], value: 'KEY=VALUE', help: "a parameter for the recipe (its params.KEY)", verbs: RUN,
    apply: (o, v) => {
      const eq = v!.indexOf('=');
      if (eq <= 0) throw new UsageError(`--param: '${v}' is not key=value`);
      o.params[v!.slice(0, eq)] = v!.slice(eq + 1);
    } },
  { names: ['--timeout'], value: 'SECONDS', help: `stop the recipe after this long (default ${RECIPE_LIMITS.timeoutMs / 1000})`, verbs: RUN,
    apply: (o, v) => void (o.timeoutMs = positiveNumber('--timeout', v!) * 1000) },
  { names: ['--memory'], value: 'MB', help: `the recipe's memory limit (default ${RECIPE_LIMITS.memoryMb})`, verbs: RUN, apply: (o, v) => void (o.memoryMb = positiveNumber('--memory', v!)) },
  { names: ['--output'], value: 'DIR', help: 'where the recipe may write host files (default: a new temporary directory)', verbs: RUN,
    apply: (o, v) => void (o.outputDir = v!) },
  { names: ['--no-typecheck'], help: 'run the recipe without type-checking it first', verbs: RUN, apply: (o) => void (o.typecheck = false) },
  { names: ['--deadline'], value: 'SECONDS', help: 'stop the whole run (launch, mount, recipe) if its commit has not begun after this long; nothing is written', verbs: RUN,
    apply: (o, v) => void (o.deadlineMs = positiveNumber('--deadline', v!) * 1000) },
  { names: ['--packer'], help: "run on the images of the Packer build guestsh is a post-processor of (from its manifest; instead of -a)", verbs: RUN,
    apply: (o) => void (o.packer = true) },
  { names: ['--manifest'], value: 'PATH', help: "--packer's manifest (default packer-manifest.json)", verbs: RUN, apply: (o, v) => void (o.manifest = v!) },
  { names: ['--result'], value: 'FILE', help: 'write the JSON result document to FILE instead of stdout', verbs: RUN, apply: (o, v) => void (o.resultFile = v!) },
  { names: ['--watch'], help: 're-run the recipe on every save, print what each run changed, roll it back', verbs: RUN, apply: (o) => void (o.watch = true) },
  { names: ['--abandon'], help: 'drop an interrupted commit instead of completing it (the image may hold part of it: check its filesystems)', verbs: ['recover'],
    apply: (o) => void (o.abandon = true) },
  { names: ['--queue'], value: 'redis://HOST:PORT', help: "batch: hand the images to workers through this Redis queue; worker: take them from it", verbs: BATCH,
    apply: (o, v) => {
      if (!/^rediss?:\/\/[^/]+/.test(v!)) throw new UsageError(`--queue: '${v}' is not a redis://HOST:PORT address`);
      o.queue = v!;
    } },
  { names: ['--concurrency'], value: 'N', help: "images at once (batch: overrides the job's concurrency; worker: default 1)", verbs: BATCH,
    apply: (o, v) => {
      const n = positiveNumber('--concurrency', v!);
      if (!Number.isInteger(n)) throw new UsageError(`--concurrency: '${v}' is not a whole number`);
      o.concurrency = n;
    } },
  { names: ['--json'], help: 'print results as JSON (the shell: one document per result, a line each; run: the log and progress as JSON lines on stderr)', verbs: ['shell', 'run', 'status', 'recover'],
    apply: (o) => void (o.json = true) },
  { names: ['--listen'], help: 'start a resident session in the background and print the shell lines that point --remote at it (eval "$(guestsh --listen -a IMAGE)")', verbs: SHELL,
    apply: (o) => void (o.listen = true) },
  { names: ['--csh'], help: "--listen: print the snippet for csh-like shells", verbs: SHELL, apply: (o) => void (o.csh = true) },
  { names: ['--idle-timeout'], value: 'SECONDS', help: `--listen: end the resident session (discarding its changes) after this long without a command (default ${RESIDENT_IDLE_TIMEOUT_S})`, verbs: SHELL,
    apply: (o, v) => void (o.idleTimeoutMs = positiveNumber('--idle-timeout', v!) * 1000) },
  { names: ['--remote'], value: 'PID', optional: 'inline', help: 'run the commands (or stdin, or -f SCRIPT) in the resident session $GUESTFISH_PID (or PID)', verbs: SHELL,
    apply: (o, v) => void (o.remote = remotePid(v)) },
  { names: ['-n', '--no-sync'], help: 'do not sync the disks when the session ends', verbs: SHELL, apply: (o) => void (o.autosync = false) },
  { names: ['--network'], help: 'enable the appliance network', verbs: IMAGES, apply: (o) => void (o.network = true) },
  { names: ['--progress-bars'], help: 'show progress bars even when stderr is not a terminal', verbs: SHELL, apply: (o) => void (o.progressBars = true) },
  { names: ['--no-progress-bars'], help: 'never show progress bars', verbs: SHELL, apply: (o) => void (o.progressBars = false) },
  { names: ['-v', '--verbose'], help: 'show the appliance console and launch details (run: and each call; mount: each request) on stderr', verbs: MOUNTS,
    apply: (o) => void (o.verbose = true) },
  { names: ['-x'], help: 'trace each call and its result on stderr', verbs: SHELL, apply: (o) => void (o.trace = true) },
  { names: ['--commit'], help: "keep the images' changes at the end (default: when every command succeeded; the interactive shell asks)", verbs: SHELL,
    apply: (o) => void (o.changes = 'commit') },
  { names: ['--discard'], help: "throw the images' changes away at the end (mount: at the unmount)", verbs: [...SHELL, 'mount'], apply: (o) => void (o.changes = 'discard') },
  { names: ['--dry-run'], help: 'throw the changes away and print the files that would have changed', verbs: IMAGES, apply: (o) => void (o.dryRun = true) },
  { names: ['--help'], help: 'this text', verbs: ALL, apply: (o) => void (o.help = true) },
  { names: ['-h', '--cmd-help'], value: 'CMD', optional: true, help: 'help on CMD, or (without CMD) list the commands', verbs: SHELL,
    apply: (o, v) => {
      o.help = true;
      if (v === undefined) o.listCommands = true;
      else o.helpCommand = v;
    } },
  { names: ['-V', '--version'], help: 'the version', verbs: SHELL, apply: (o) => void (o.version = true) },
  { names: ['-d', '--domain', '-c', '--connect'], value: 'NAME', help: "guestfish's libvirt options: refused (guestsh opens image files)", verbs: IMAGES,
    apply: (_o, v) => {
      throw new UsageError(`libvirt domains and connections are not supported (got '${v}'): guestsh opens image files; add the domain's disks with -a (virsh domblklist DOMAIN lists them)`);
    } },
  { names: ['--pipe-error', '--selinux', '--no-dest-paths'], help: "guestfish's; accepted, no effect in guestsh", verbs: SHELL, apply: () => {} },
];

/** What each verb is for, in the order --help lists them. */
export const VERBS: Record<Verb, { synopsis: string; summary: string }> = {
  shell: { synopsis: 'guestsh [--options] [CMD ARGS [: CMD ARGS]...]', summary: 'the shell: commands from the command line, -f SCRIPT, stdin or the prompt' },
  run: { synopsis: 'guestsh run [--options] RECIPE.gfs.ts', summary: 'run a recipe; the images change only if it succeeds (--watch: re-run on every save)' },
  check: { synopsis: 'guestsh check RECIPE.gfs.ts', summary: "type-check a recipe against this guestsh's types, without running it" },
  'init-recipe': { synopsis: 'guestsh init-recipe NAME [DIR]', summary: 'write a starter recipe with a tsconfig that type-checks it' },
  recover: { synopsis: 'guestsh recover IMAGE [--json]', summary: "finish an interrupted commit, or remove an abandoned run's changes" },
  status: { synopsis: 'guestsh status IMAGE [--json]', summary: 'show the writer, pending changes and interrupted commits of IMAGE' },
  batch: { synopsis: 'guestsh batch JOB.yaml [--queue redis://HOST:PORT]', summary: "run a job's recipe over many images: a local pool, or workers through a queue" },
  worker: { synopsis: 'guestsh worker --queue redis://HOST:PORT [--concurrency N]', summary: "run the images a batch put on the queue" },
  mount: { synopsis: 'guestsh mount -a IMAGE (-i | -m DEV[:MNT]) [--ro] [--discard] MOUNTPOINT', summary: "the guest's filesystems on MOUNTPOINT (FUSE, root only) until unmounted; the unmount commits" },
  umount: { synopsis: 'guestsh umount MOUNTPOINT', summary: 'unmount a guestsh mount and wait until its changes are committed' },
};

/** -a's value: a path, or guestfish's URI form; only file:// names a file guestsh can open. */
function imagePath(v: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(v)?.[1];
  if (scheme === undefined) return v;
  if (scheme.toLowerCase() !== 'file') {
    throw new UsageError(`-a ${v}: network drives (${scheme}://) are not supported: guestsh opens local image files; copy the image here, or export it and use its path`);
  }
  try {
    return fileURLToPath(v);
  } catch (e) {
    throw new UsageError(`-a ${v}: not a file URI guestsh can read (${(e as Error).message})`);
  }
}

const byName = new Map<string, OptionSpec>();
for (const spec of OPTIONS) for (const n of spec.names) byName.set(n, spec);

function emptyOptions(): Options {
  return {
    drives: [], mounts: [], readonly: false, inspector: false, verbose: false, trace: false, help: false, helpCommand: null, listCommands: false,
    version: false, file: null, json: false, keysFromStdin: false, echoKeys: false, keySelectors: [], autosync: true, network: false, changes: null, dryRun: false, abandon: false, queue: undefined, concurrency: undefined, allowBacking: false,
    listen: false, csh: false, idleTimeoutMs: RESIDENT_IDLE_TIMEOUT_S * 1000, remote: null,
    progressBars: null, listPrepared: false, commands: [], params: {}, timeoutMs: undefined, memoryMb: undefined, outputDir: undefined, watch: false, typecheck: true,
    packer: false, manifest: undefined, resultFile: undefined, deadlineMs: undefined, operands: [],
  };
}

const see = (verb: Verb): string => `see guestsh${verb === 'shell' ? '' : ` ${verb}`} --help`;

/** Parses the words after `guestsh` (after `guestsh VERB` for a verb). */
export function parseArgs(verb: Verb, argv: readonly string[]): Options {
  const o = emptyOptions();
  const st: ParseState = { format: undefined, prepared: 1 };
  const accepts = (spec: OptionSpec | undefined): spec is OptionSpec => spec !== undefined && spec.verbs.includes(verb);
  const unknown = (word: string): UsageError =>
    new UsageError(`${verb === 'shell' ? '' : `${verb}: `}unknown option '${word}'; ${see(verb)}`);
  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      i++;
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      if (verb === 'shell') break;
      o.operands.push(word);
      continue;
    }
    const eq = word.startsWith('--') ? word.indexOf('=') : -1;
    const name = eq > 0 ? word.slice(0, eq) : word;
    const spec = byName.get(name);
    if (accepts(spec)) {
      let value = eq > 0 ? word.slice(eq + 1) : undefined;
      if (spec.value === undefined && value !== undefined) throw new UsageError(`option ${name} takes no value; ${see(verb)}`);
      if (spec.value !== undefined && value === undefined) {
        const next = argv[i + 1];
        if (spec.optional === true) {
          if (next !== undefined && !next.startsWith('-')) value = argv[++i];
        } else if (spec.optional === undefined) {
          if (next === undefined) throw new UsageError(`option ${name} needs a value (${spec.value}); ${see(verb)}`);
          value = argv[++i];
        }
      }
      spec.apply(o, value, st);
      continue;
    }
    // Bundled single-letter flags: -ix, -rv …
    const bundle = [...word.slice(1)].map((c) => byName.get(`-${c}`));
    if (/^-[a-zA-Z]+$/.test(word) && bundle.every((s) => accepts(s) && s.value === undefined)) {
      for (const s of bundle) s!.apply(o, undefined, st);
      continue;
    }
    throw unknown(word);
  }
  if (verb === 'shell') shellCommands(o, argv.slice(i), st);
  else o.operands.push(...argv.slice(i));
  return o;
}

/** The shell's words after its options: commands split at ':' (or guestfish's old `-i disk.img`). */
function shellCommands(o: Options, words: readonly string[], st: ParseState): void {
  if (o.inspector && o.drives.length === 0 && words.length) {
    for (const path of words) o.drives.push({ kind: 'add', path, format: st.format });
    return;
  }
  o.commands.push(...splitCommands(words));
}

/** The shell's options (guestfish's) and its commands. */
export function parseOptions(argv: readonly string[]): Options {
  return parseArgs('shell', argv);
}

/** The --help text of the shell or a verb, from the option table. */
export function usage(verb: Verb): string {
  const rows = OPTIONS.filter((s) => s.verbs.includes(verb)).map((s) => {
    const flags = `${s.names.join(', ')}${s.value ? (s.optional ? `[=${s.value}]` : ` ${s.value}`) : ''}`;
    return flags.length < 24 ? `  ${flags.padEnd(24)} ${s.help}` : `  ${flags}\n  ${''.padEnd(24)} ${s.help}`;
  });
  const lines = [`usage: ${VERBS[verb].synopsis}`, `  ${VERBS[verb].summary}`, ...rows];
  if (verb === 'shell') {
    lines.push(
      'Without commands, guestsh runs a script from stdin, or the interactive shell on a terminal.',
      'Commands are libguestfs actions and guestfish commands, e.g.',
      '  guestsh -a disk.img --ro -i cat /etc/hostname',
      '  guestsh -a disk.img --ro run : list-filesystems',
      'Verbs (guestsh VERB --help for their options):',
      ...(Object.keys(VERBS) as Verb[]).filter((v) => v !== 'shell').map((v) => `  ${VERBS[v].synopsis.padEnd(38)} ${VERBS[v].summary}`),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The shell's `man`: the guide, then every verb's usage, from the same tables as --help. */
export function manual(): string {
  const verbs = (Object.keys(VERBS) as Verb[]).map((v) => usage(v));
  return [`GUESTSH(1)\n\n${HELP_GUIDE}`, ...verbs].join('\n');
}
