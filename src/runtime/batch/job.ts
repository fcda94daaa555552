// A batch job file (`guestsh batch JOB.yaml`): read with the yaml package,
// keeping every node's position, and checked completely before any image is
// touched. Whatever is wrong is reported where it is, as
// `JOB.yaml:LINE:COL: what is wrong` (a UsageError: exit status 2).
//
// Paths in the file (images, excludes, the recipe, results) are relative to
// the file's own directory, so a job means the same from wherever it is run.

import { readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';
import { isDynamicPattern, globSync } from 'tinyglobby';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from 'yaml';
import { UsageError } from '../errors.js';
import { type MountArg, parseMount } from '../open/open.js';
import { stdRecipeName } from '../recipe/run.js';

export interface BatchImage {
  /** The image's real path (symlinks resolved): what is opened, locked and reported. */
  path: string;
  format: string | undefined;
  /** The job's params with this image's overrides applied. */
  params: Record<string, string>;
}

/** inspect (-i); a list of -m mounts; or none: the recipe mounts what it needs. */
export type BatchMount = { inspect: true } | { inspect: false; mounts: MountArg[] };

export interface BatchJob {
  /** The job file, as given. */
  file: string;
  /** A .gfs.ts file's absolute path, or a standard-library recipe `guestsh/NAME`. */
  recipe: string;
  images: BatchImage[];
  mount: BatchMount;
  /** Sessions at once; null: chosen from the machine (see defaultConcurrency). */
  concurrency: number | null;
  /** Per image, for the recipe. */
  timeoutMs: number | undefined;
  memoryMb: number | undefined;
  /** How many more times a failed image is tried. */
  retries: number;
  skipUnchanged: boolean;
  onFailure: 'continue' | 'stop';
  network: boolean;
  /** The results file (JSON lines); the fingerprints go beside it. */
  results: string;
}

/** Image formats a job may name (what qemu-img and the session open). */
const FORMATS = ['raw', 'qcow2', 'qed', 'vmdk', 'vdi', 'vhdx', 'vpc'];

const TOP_KEYS = ['recipe', 'params', 'images', 'exclude', 'mount', 'concurrency', 'timeout', 'memory', 'retries', 'skip_unchanged', 'on_failure', 'network', 'results'] as const;
const IMAGE_KEYS = ['path', 'exclude', 'format', 'params'] as const;

/** A mistake in the job file, at a place in it. */
class JobMistake extends Error {
  constructor(
    readonly node: Node | null | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** Reads and checks a job file; throws a UsageError naming FILE:LINE:COL. */
export function loadJob(file: string): BatchJob {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the job file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseJob(text, file);
}

/** Checks a job's text; `file` is where it came from (relative paths start from its directory). */
export function parseJob(text: string, file: string): BatchJob {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number): string => {
    const p = lines.linePos(offset);
    return `${file}:${p.line}:${p.col}`;
  };
  const problem = doc.errors[0];
  if (problem) throw new UsageError(`${where(problem.pos[0])}: ${problem.message.split('\n')[0]}`);
  try {
    return readJob(doc.contents, file, (n) => lines.linePos(n.range?.[0] ?? 0).line);
  } catch (e) {
    if (e instanceof JobMistake) throw new UsageError(`${where(e.node?.range?.[0] ?? 0)}: ${e.message}`);
    throw e;
  }
}

function scalarString(node: unknown, what: string): string {
  if (!isScalar(node) || node.value === null || typeof node.value === 'object') throw new JobMistake(node as Node, `${what} must be a single value`);
  return String(node.value);
}

function positiveInteger(node: unknown, what: string, min: number): number {
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new JobMistake(node as Node, `${what} must be a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}`);
  return v;
}

function boolean(node: unknown, what: string): boolean {
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v !== 'boolean') throw new JobMistake(node as Node, `${what} must be true or false`);
  return v;
}

/** The map's pairs, refusing keys outside `known` (with the list of the known ones). */
function pairsOf(map: YAMLMap, known: readonly string[], what: string): Map<string, { key: Node; value: unknown }> {
  const out = new Map<string, { key: Node; value: unknown }>();
  for (const pair of map.items) {
    const key = pair.key as Node;
    const name = isScalar(key) ? String(key.value) : '';
    if (!known.includes(name)) throw new JobMistake(key, `unknown key '${name}' in ${what} (known: ${known.join(', ')})`);
    out.set(name, { key, value: pair.value });
  }
  return out;
}

function paramsOf(node: unknown, what: string): Record<string, string> {
  if (!isMap(node)) throw new JobMistake(node as Node, `${what} must be a map of name: value`);
  const out: Record<string, string> = {};
  for (const pair of node.items) {
    const key = scalarString(pair.key, 'a parameter name');
    out[key] = scalarString(pair.value, `parameter '${key}'`);
  }
  return out;
}

function stringList(node: unknown, what: string): { text: string; node: Node }[] {
  const items = isSeq(node) ? node.items : [node];
  return items.map((n) => ({ text: scalarString(n, what), node: n as Node }));
}

type LineOf = (node: Node) => number;

function readJob(root: unknown, file: string, lineOf: LineOf): BatchJob {
  if (!isMap(root)) throw new JobMistake(root as Node, 'a job file is a map of keys (recipe:, images:, …)');
  const top = pairsOf(root, TOP_KEYS, 'the job');
  const dir = dirname(resolve(file));
  const at = (p: string): string => resolve(dir, p);

  const recipeNode = top.get('recipe');
  if (!recipeNode) throw new JobMistake(root, "the job names no recipe: add 'recipe: FILE.gfs.ts' (or a ready one such as guestsh/sysprep)");
  const recipe = readRecipe(recipeNode.value, at);

  const params = top.has('params') ? paramsOf(top.get('params')!.value, 'params') : {};
  const imagesNode = top.get('images');
  if (!imagesNode) throw new JobMistake(root, "the job names no images: add 'images:' with a list of paths or globs");
  const sharedExcludes = top.has('exclude') ? stringList(top.get('exclude')!.value, 'an exclude pattern').map((x) => x.text) : [];
  const images = readImages(imagesNode.value, dir, params, sharedExcludes, lineOf);

  let mount: BatchMount = { inspect: true };
  const mountNode = top.get('mount')?.value;
  if (mountNode !== undefined) {
    if (isScalar(mountNode) && mountNode.value === 'inspect') mount = { inspect: true };
    else if (isScalar(mountNode) && mountNode.value === 'none') mount = { inspect: false, mounts: [] };
    else if (isSeq(mountNode) && mountNode.items.length > 0) {
      mount = {
        inspect: false,
        mounts: stringList(mountNode, 'a mount (DEVICE[:MOUNTPOINT[:OPTIONS[:FSTYPE]]])').map(({ text, node }) => {
          try {
            return parseMount(text);
          } catch (e) {
            throw new JobMistake(node, (e as Error).message);
          }
        }),
      };
    } else throw new JobMistake(mountNode as Node, "mount must be 'inspect', 'none' (the recipe mounts) or a list of DEVICE[:MOUNTPOINT[:OPTIONS[:FSTYPE]]] mounts");
  }

  let concurrency: number | null = null;
  const cNode = top.get('concurrency')?.value;
  if (cNode !== undefined && !(isScalar(cNode) && cNode.value === 'auto')) concurrency = positiveInteger(cNode, "concurrency ('auto' or a number)", 1);

  const seconds = (name: string): number | undefined => {
    const n = top.get(name)?.value;
    if (n === undefined) return undefined;
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v !== 'number' || !(v > 0)) throw new JobMistake(n as Node, `${name} must be a positive number (seconds)`);
    return v * 1000;
  };
  const memory = top.get('memory')?.value;
  const onFailure = top.get('on_failure')?.value;
  let onFailureValue: 'continue' | 'stop' = 'continue';
  if (onFailure !== undefined) {
    const v = isScalar(onFailure) ? onFailure.value : undefined;
    if (v !== 'continue' && v !== 'stop') throw new JobMistake(onFailure as Node, 'on_failure must be continue or stop');
    onFailureValue = v;
  }
  const resultsNode = top.get('results')?.value;
  const results = resultsNode !== undefined ? at(scalarString(resultsNode, 'results')) : resolve(dir, `${basenameNoExt(file)}.results.jsonl`);

  return {
    file,
    recipe,
    images,
    mount,
    concurrency,
    timeoutMs: seconds('timeout'),
    memoryMb: memory === undefined ? undefined : positiveInteger(memory, 'memory (MB)', 8),
    retries: top.has('retries') ? positiveInteger(top.get('retries')!.value, 'retries', 0) : 0,
    skipUnchanged: top.has('skip_unchanged') ? boolean(top.get('skip_unchanged')!.value, 'skip_unchanged') : true,
    onFailure: onFailureValue,
    network: top.has('network') ? boolean(top.get('network')!.value, 'network') : false,
    results,
  };
}

function basenameNoExt(file: string): string {
  return basename(file).replace(/\.ya?ml$/i, '');
}

function readRecipe(node: unknown, at: (p: string) => string): string {
  const name = scalarString(node, 'recipe');
  try {
    if (stdRecipeName(name)) return name;
  } catch (e) {
    throw new JobMistake(node as Node, (e as Error).message);
  }
  const path = at(name);
  const st = statOrNull(path);
  if (!st?.isFile()) throw new JobMistake(node as Node, `recipe '${name}' does not exist (a .gfs.ts file, relative to the job file, or guestsh/NAME)`);
  return path;
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function readImages(node: unknown, dir: string, params: Record<string, string>, sharedExcludes: string[], lineOf: LineOf): BatchImage[] {
  if (!isSeq(node) || node.items.length === 0) throw new JobMistake(node as Node, 'images must be a list of paths or globs (or of maps with path:)');
  const images: BatchImage[] = [];
  /** dev:ino → where that file was first named. */
  const seen = new Map<string, { path: string; line: Node }>();
  for (const item of node.items) {
    let pathNode: unknown = item;
    let format: string | undefined;
    let own: Record<string, string> = {};
    let excludes = sharedExcludes;
    if (isMap(item)) {
      const keys = pairsOf(item, IMAGE_KEYS, 'an image');
      if (!keys.has('path')) throw new JobMistake(item, 'an image entry needs path: (a file or a glob)');
      pathNode = keys.get('path')!.value;
      if (keys.has('format')) {
        const f = keys.get('format')!;
        format = scalarString(f.value, 'format');
        if (!FORMATS.includes(format)) throw new JobMistake(f.value as Node, `format '${format}' is not one of ${FORMATS.join(', ')}`);
      }
      if (keys.has('params')) own = paramsOf(keys.get('params')!.value, "an image's params");
      if (keys.has('exclude')) excludes = [...sharedExcludes, ...stringList(keys.get('exclude')!.value, 'an exclude pattern').map((x) => x.text)];
    }
    const pattern = scalarString(pathNode, 'an image path');
    const matches = expand(pattern, dir, excludes, pathNode as Node);
    for (const m of matches) {
      const st = statSync(m.real);
      if (!st.isFile() && !st.isBlockDevice()) throw new JobMistake(pathNode as Node, `'${m.shown}' is not a disk image (not a regular file or a block device)`);
      const key = `${st.dev}:${st.ino}`;
      const before = seen.get(key);
      if (before) throw new JobMistake(pathNode as Node, `'${m.shown}' is the same file as '${before.path}' (line ${lineOf(before.line)}): an image may appear once in a job`);
      seen.set(key, { path: m.shown, line: pathNode as Node });
      images.push({ path: m.real, format, params: { ...params, ...own } });
    }
  }
  return images;
}

/** A path or glob's files, relative to `dir`, less the excludes; each with its real path. */
function expand(pattern: string, dir: string, excludes: string[], node: Node): { real: string; shown: string }[] {
  let found: string[];
  if (isDynamicPattern(pattern)) {
    found = globSync(pattern, { cwd: dir, absolute: true, onlyFiles: true, expandDirectories: false, ignore: excludes, followSymbolicLinks: true }).sort();
    if (found.length === 0) {
      const excluded = excludes.length > 0 && globSync(pattern, { cwd: dir, onlyFiles: true, expandDirectories: false }).length > 0;
      throw new JobMistake(node, `'${pattern}' matches no file${excluded ? ' (all it matches are excluded)' : ''}`);
    }
  } else {
    const path = isAbsolute(pattern) ? pattern : resolve(dir, pattern);
    if (!statOrNull(path)) throw new JobMistake(node, `image '${pattern}' does not exist`);
    const excluded = excludes.length > 0 && globSync(excludes, { cwd: dir, absolute: true, expandDirectories: false }).includes(path);
    if (excluded) throw new JobMistake(node, `image '${pattern}' is excluded by the job's own exclude patterns`);
    found = [path];
  }
  return found.map((p) => ({ real: realpathOf(p), shown: relative(dir, p) || p }));
}

function realpathOf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * How many sessions at once when the job does not say: one per CPU, and no
 * more than free memory holds appliances of `memsizeMiB` (leaving a quarter
 * of it to everything else); at least one.
 */
export function defaultConcurrency(memsizeMiB: number, freeBytes: number, cpus: number = availableParallelism()): { n: number; why: string } {
  const byMemory = Math.floor((freeBytes * 0.75) / (memsizeMiB * 2 ** 20));
  const n = Math.max(1, Math.min(cpus, byMemory));
  const freeGiB = (freeBytes / 2 ** 30).toFixed(1);
  return { n, why: `${n} at once (${cpus} CPUs; ${freeGiB} GiB free memory holds ${byMemory} appliances of ${memsizeMiB} MiB)` };
}
