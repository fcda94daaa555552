// What a sandboxed call may do, and the host side of the ones that move files.
//
// Recipes reach every public libguestfs action, except the ones that change
// what the host executes or how the appliance is started, or that end the
// session (the run owns its lifetime and its commit). Host paths are
// confined: reads to the recipe's directory (and the run's output
// directory), writes to the run's output directory; the prompt's calls may
// use any action, with host paths under its current directory.
//
// The session never opens a host path for a sandboxed call: the file is
// opened here, through host-fs.ts's confined walk (no `..` out, no symbolic
// link followed, only regular files and directories), and the call gets a
// stream from or to that descriptor. copy_in and copy_out, which the library
// does with the host's tar, build and extract their tar streams here
// (host-tar.ts). Every host read and write ends when the call's signal
// aborts: the run's time limit and stop reach the host side too.

import type { FileHandle } from 'node:fs/promises';
import { realpath } from 'node:fs/promises';
import { actionByName } from '../../spec/index.js';
import type { ActionSpec } from '../../spec/types.js';
import type { ArgValue, CallTransfer, OptArgs, RetValue } from '../../spec/values.js';
import { UsageError } from '../errors.js';
import { encodeArgs } from '../protocol/codec.js';
import { extraHostPaths, type HostPathArg, recipeRefusals, REFUSED_CONFIG_ONLY } from '../session/action-policy.js';
import { type HostPath, type HostRoot, locate, openDirAt, openDirectory, openForRead, openForWrite, openWriteAt, readChunks, RecipePolicyError, writeAll } from './host-fs.js';
import { packTree, TarExtractor } from './host-tar.js';

export type { HostPathArg };
export { RecipePolicyError };

/** What runs a sandboxed call's libguestfs action: a Session (or the shell's call over it). */
export interface ActionTarget {
  call(name: string, args: readonly ArgValue[], optargs?: OptArgs, transfer?: CallTransfer): Promise<RetValue>;
}

/** A recipe's session: its actions, and savepoints. */
export interface CallTarget extends ActionTarget {
  g: { savepoint(name: string): Promise<void>; rollbackTo(name: string): Promise<void> };
}

/** What one sandboxed call gets besides its arguments. */
export interface CallIo {
  /** Aborts when the run stops (time limit, memory limit, stop): transfers, host reads and writes end. */
  signal: AbortSignal;
  /** Told each chunk a library-side action collects in host memory; throws past the call's limit. */
  countBuffered: (bytes: number) => void;
  log: (line: string) => void;
}

/** Host-path arguments of an action: FileIn/FileOut kinds from the spec, plus those the action policy names. */
export function hostPathArgs(action: ActionSpec): HostPathArg[] {
  const fromSpec = action.args.flatMap((a, index): HostPathArg[] => {
    if (a.kind !== 'String') return [];
    if (a.sub === 'FileIn') return [{ index, mode: 'read' }];
    if (a.sub === 'FileOut') return [{ index, mode: 'write' }];
    return [];
  });
  return [...fromSpec, ...(extraHostPaths[action.name] ?? [])];
}

/** Why a recipe may not call this action, or null when it may. */
export function refusal(action: ActionSpec): string | null {
  if (action.visibility !== 'VPublic' && action.visibility !== 'VPublicNoFish') {
    return 'it is not a public libguestfs action';
  }
  const why = recipeRefusals[action.name];
  if (why) return why;
  if (action.configOnly) return REFUSED_CONFIG_ONLY;
  return null;
}

export interface Roots {
  /** Real path of the recipe's directory (reads). */
  readDir: string;
  /** Real path of the run's output directory (writes, and reads back). */
  outDir: string;
}

type HostSide = (policy: PathPolicy, target: ActionTarget, io: CallIo, args: readonly string[]) => Promise<RetValue>;

export class PathPolicy {
  /** Host files recipes read through this policy (watch mode re-runs when one changes). */
  readonly filesRead = new Set<string>();
  readonly roots: Roots;

  private constructor(
    private readonly readRoot: HostRoot,
    private readonly outRoot: HostRoot,
    /** Recipes' calls: the refused actions stay refused. The prompt may call anything. */
    private readonly refuses: boolean,
  ) {
    this.roots = { readDir: readRoot.real, outDir: outRoot.real };
  }

  static async create(readDir: string, outDir: string): Promise<PathPolicy> {
    return new PathPolicy({ real: await realpath(readDir), given: readDir }, { real: await realpath(outDir), given: outDir }, true);
  }

  /** The prompt's: every action, host paths (reads and writes) under `dir`. */
  static async forPrompt(dir: string): Promise<PathPolicy> {
    const root = { real: await realpath(dir), given: dir };
    return new PathPolicy(root, root, false);
  }

  /** A host file to read: relative paths are relative to the recipe's directory. */
  locateRead(action: string, p: string): HostPath {
    if (p === '-' || p === '') throw new RecipePolicyError(`${action}: '${p}' is not a host file a recipe can read`);
    const h = locate(p, this.readRoot, [this.readRoot, this.outRoot]);
    if (!h) {
      throw new RecipePolicyError(`${action}: host path '${p}' is outside the recipe's directory ${this.roots.readDir} (recipes may only read files beside them)`);
    }
    return h;
  }

  /** A host file or directory to write: relative paths are relative to the run's output directory. */
  locateWrite(action: string, p: string): HostPath {
    if (p === '-' || p === '') throw new RecipePolicyError(`${action}: '${p}' is not a host file a recipe can write`);
    const h = locate(p, this.outRoot, [this.outRoot]);
    if (!h) throw new RecipePolicyError(`${action}: host path '${p}' is outside the run's output directory ${this.roots.outDir}`);
    return h;
  }

  /** Runs one call on `target`: refused actions refused, host paths opened confined, host-side transfers done here. */
  async call(target: ActionTarget, io: CallIo, name: string, args: readonly ArgValue[], optargs: OptArgs | undefined): Promise<RetValue> {
    const action = actionByName(name);
    if (!action) throw new RecipePolicyError(`unknown action '${name}'`);
    if (this.refuses) {
      const why = refusal(action);
      if (why) throw new RecipePolicyError(`${action.name} is not allowed in recipes: ${why}`);
    }
    const own = HOST_SIDE[action.name];
    if (own) {
      // Counts and types checked as the session checks them, before any host path is touched.
      encodeArgs(action, args, optargs ?? {});
      return own(this, target, io, args as string[]);
    }
    const transfer: CallTransfer = { signal: io.signal, countBuffered: io.countBuffered };
    const out = [...args];
    const opened: FileHandle[] = [];
    try {
      for (const h of hostPathArgs(action)) {
        const v = out[h.index];
        if (typeof v !== 'string') continue; // the session's own type check reports it
        if (h.mode === 'read') {
          const loc = this.locateRead(action.name, v);
          const { fh } = await openForRead(loc, action.name, false);
          opened.push(fh);
          this.filesRead.add(loc.real);
          transfer.fileIn = readChunks(fh, io.signal);
          out[h.index] = loc.real;
        } else if (h.mode === 'write') {
          const loc = this.locateWrite(action.name, v);
          const fh = await openForWrite(loc, action.name);
          opened.push(fh);
          transfer.fileOut = (chunk) => writeAll(fh, chunk, io.signal);
          out[h.index] = loc.real;
        } else {
          throw new Error(`${action.name}: guestsh has no confined implementation of its host directory argument (guestsh bug)`);
        }
      }
      return await target.call(action.name, out, optargs, transfer);
    } finally {
      for (const fh of opened) await fh.close();
    }
  }
}

/**
 * A call from the shell's prompt: every action, host paths under the
 * current directory (`lcd` moves it), confined as recipes' are.
 */
export async function callFromPrompt(target: ActionTarget, io: CallIo, name: string, args: readonly ArgValue[], optargs: OptArgs | undefined): Promise<RetValue> {
  const action = actionByName(name);
  if (action && !HOST_SIDE[action.name] && hostPathArgs(action).length === 0) {
    return target.call(action.name, args, optargs, { signal: io.signal, countBuffered: io.countBuffered });
  }
  return (await PathPolicy.forPrompt(process.cwd())).call(target, io, name, args, optargs);
}

/** The last component of a guest path the way copy_in/copy_out name things ('' for '/'). */
function baseName(path: string): string {
  const p = path.length >= 2 && path.endsWith('/') ? path.slice(0, -1) : path;
  return p.slice(p.lastIndexOf('/') + 1);
}

async function copyIn(policy: PathPolicy, target: ActionTarget, io: CallIo, [local, remotedir]: readonly string[]): Promise<RetValue> {
  const h = policy.locateRead('copy_in', local!);
  // The host side is refused before the guest is asked anything, as libguestfs checks it first.
  await (await openForRead(h, 'copy_in', true)).fh.close();
  policy.filesRead.add(h.real);
  if (!(await target.call('is_dir', [remotedir!], {}, { signal: io.signal }))) throw new UsageError(`copy_in: target '${remotedir}' is not a directory`);
  await target.call('tar_in', ['-', remotedir!], {}, { signal: io.signal, fileIn: packTree(h, 'copy_in', io.signal) });
  return null;
}

async function copyOut(policy: PathPolicy, target: ActionTarget, io: CallIo, [remote, localdir]: readonly string[]): Promise<RetValue> {
  const base = baseName(remote!);
  if (base === '..') throw new RecipePolicyError(`copy_out: '${remote}' ends in '..', which would name a host directory outside '${localdir}'; name the directory itself`);
  const h = policy.locateWrite('copy_out', localdir!);
  const dir = await openDirectory(h, 'copy_out');
  try {
    const shown = `${localdir}/${base}`;
    if (await target.call('is_file', [remote!], {}, { signal: io.signal })) {
      const fh = await openWriteAt(dir, base, 'copy_out', shown);
      try {
        await target.call('download', [remote!, '-'], {}, { signal: io.signal, fileOut: (c) => writeAll(fh, c, io.signal) });
      } finally {
        await fh.close();
      }
      return null;
    }
    if (!(await target.call('is_dir', [remote!], {}, { signal: io.signal }))) throw new UsageError(`copy_out: '${remote}' is not a file or directory`);
    const into = await openDirAt(dir, base === '' || base === '.' ? [] : [base], { action: 'copy_out', shown, whole: true, create: true });
    const tar = new TarExtractor(into, { action: 'copy_out', shown: base === '' || base === '.' ? localdir! : shown, signal: io.signal });
    try {
      await target.call('tar_out', [remote!, '-'], {}, { signal: io.signal, fileOut: (c) => tar.write(c) });
      tar.end();
    } finally {
      await tar.close();
      await into.close();
    }
    if (tar.skipped) {
      io.log(`copy_out: ${tar.skipped} device node(s), FIFO(s) or socket(s) under '${remote}' were left out (sandboxed calls write only regular files, directories and symbolic links to the host)`);
    }
    return null;
  } finally {
    await dir.close();
  }
}

/** Library-side actions whose host side is done here rather than by the session (it would use the host's tar). */
const HOST_SIDE: Readonly<Record<string, HostSide>> = {
  copy_in: copyIn,
  copy_out: copyOut,
};
