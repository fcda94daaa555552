// What a recipe may do with the session it is handed.
//
// Every public libguestfs action is reachable, except the ones that change
// what the host executes or how the appliance is started, or that end the
// session (the run owns its lifetime and its commit). Host paths in
// file-transfer arguments are confined: reads to the recipe's directory (and
// the run's output directory), writes to the run's output directory.
// Symlinks are resolved before the check, so a link planted in the output
// directory (copy_out can extract one from the guest) cannot point a later
// upload or download outside.

import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { actionByName } from '../../spec/index.js';
import type { ActionSpec } from '../../spec/types.js';
import type { ArgValue, OptArgs } from '../../spec/values.js';
import { extraHostPaths, type HostPathArg, recipeRefusals, REFUSED_CONFIG_ONLY } from '../session/action-policy.js';

export type { HostPathArg };

export class RecipePolicyError extends Error {
  override name = 'RecipePolicyError';
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

function within(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

export interface Roots {
  /** Real path of the recipe's directory (reads). */
  readDir: string;
  /** Real path of the run's output directory (writes, and reads back). */
  outDir: string;
}

export class PathPolicy {
  constructor(readonly roots: Roots) {}

  /** Host files recipes read through this policy (watch mode re-runs when one changes). */
  readonly filesRead = new Set<string>();

  static async create(readDir: string, outDir: string): Promise<PathPolicy> {
    return new PathPolicy({ readDir: await realpath(readDir), outDir: await realpath(outDir) });
  }

  /** A host file to read: relative paths are relative to the recipe's directory. */
  async read(action: string, p: string): Promise<string> {
    if (p === '-' || p === '') throw new RecipePolicyError(`${action}: '${p}' is not a host file a recipe can read`);
    const abs = resolve(this.roots.readDir, p);
    const real = await realpath(abs).catch(() => null);
    if (!real) throw new RecipePolicyError(`${action}: host file '${p}' does not exist (recipes read from ${this.roots.readDir})`);
    if (!within(real, this.roots.readDir) && !within(real, this.roots.outDir)) {
      throw new RecipePolicyError(
        `${action}: host path '${p}' is outside the recipe's directory ${this.roots.readDir} (recipes may only read files beside them)`,
      );
    }
    this.filesRead.add(real);
    return real;
  }

  /** A host file to write: relative paths are relative to the run's output directory. */
  async write(action: string, p: string): Promise<string> {
    if (p === '-' || p === '') throw new RecipePolicyError(`${action}: '${p}' is not a host file a recipe can write`);
    const abs = resolve(this.roots.outDir, p);
    const parent = await realpath(dirname(abs)).catch(() => null);
    if (!parent) throw new RecipePolicyError(`${action}: host directory of '${p}' does not exist (recipes write into ${this.roots.outDir})`);
    const target = join(parent, basename(abs));
    if (!within(parent, this.roots.outDir) || target === this.roots.outDir || !within(target, this.roots.outDir)) {
      throw new RecipePolicyError(`${action}: host path '${p}' is outside the run's output directory ${this.roots.outDir}`);
    }
    const st = await lstat(target).catch(() => null);
    if (st?.isSymbolicLink()) {
      const real = await realpath(target).catch(() => null);
      if (!real || !within(real, this.roots.outDir)) {
        throw new RecipePolicyError(`${action}: host path '${p}' is a symbolic link leading outside the run's output directory`);
      }
      return real;
    }
    if (st?.isDirectory()) throw new RecipePolicyError(`${action}: host path '${p}' is a directory`);
    return target;
  }

  /** A host directory to extract into (copy_out). */
  async writeDir(action: string, p: string): Promise<string> {
    const abs = resolve(this.roots.outDir, p);
    const real = await realpath(abs).catch(() => null);
    if (!real) throw new RecipePolicyError(`${action}: host directory '${p}' does not exist (recipes write into ${this.roots.outDir})`);
    if (!within(real, this.roots.outDir)) {
      throw new RecipePolicyError(`${action}: host directory '${p}' is outside the run's output directory ${this.roots.outDir}`);
    }
    if (!(await stat(real)).isDirectory()) throw new RecipePolicyError(`${action}: host path '${p}' is not a directory`);
    return real;
  }
}

/**
 * Checks one call against the policy and returns the arguments with host
 * paths replaced by their checked real paths.
 */
export async function checkCall(policy: PathPolicy, name: string, args: readonly ArgValue[], _optargs: OptArgs | undefined): Promise<ArgValue[]> {
  const action = actionByName(name);
  if (!action) throw new RecipePolicyError(`unknown action '${name}'`);
  const why = refusal(action);
  if (why) throw new RecipePolicyError(`${action.name} is not allowed in recipes: ${why}`);
  return confineHostPaths(policy, action, args);
}

/**
 * The check for TypeScript typed at the shell's prompt: the person there owns
 * the session, so every action is allowed; host paths stay under the current
 * directory (reads and writes alike), checked as recipes' are.
 */
export async function checkPromptCall(name: string, args: readonly ArgValue[]): Promise<ArgValue[]> {
  const action = actionByName(name);
  if (!action) throw new RecipePolicyError(`unknown action '${name}'`);
  if (hostPathArgs(action).length === 0) return [...args];
  const cwd = process.cwd();
  return confineHostPaths(await PathPolicy.create(cwd, cwd), action, args);
}

async function confineHostPaths(policy: PathPolicy, action: ActionSpec, args: readonly ArgValue[]): Promise<ArgValue[]> {
  const out = [...args];
  for (const h of hostPathArgs(action)) {
    const v = out[h.index];
    if (typeof v !== 'string') continue; // the session's own type check reports it
    out[h.index] = await policy[h.mode](action.name, v);
  }
  return out;
}
