// Runs the guestfish script corpus (testdata/scripts/*.gfs) with guestfish
// and with guestsh on identical fresh copies of the same images and returns
// both outputs per script.
//
// To keep the run short, every script without a "#@ args:" header goes into
// one batch: one guestfish process and one guestsh process each run all of
// them (`run` once, then for each script `echo ==== NAME`, `-umount-all` and
// the script), and the output is split at the separators. Scripts with a
// header (options such as -i, -m, -N, or an expected failure) run alone.
// guestfish and guestsh run side by side: two appliances at a time.
//
// Usable from the test and by hand: `npx tsx test/shell/corpus.ts [filter]`.

import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureGuest } from '../../testdata/index.js';
import { scaled } from '../slowdown.js';

export const SCRIPTS_DIR = resolve(import.meta.dirname, '..', '..', 'testdata', 'scripts');
const GUESTSH = resolve(import.meta.dirname, '..', '..', 'bin', 'guestsh.js');

export interface Script {
  name: string;
  text: string;
  /** Options for a standalone run ($DISK, $BLANK substituted), or null for the batch. */
  args: string[] | null;
}

export interface ToolRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface ScriptResult {
  name: string;
  guestfish: { code: number; stdout: string };
  guestsh: { code: number; stdout: string };
}

export function loadScripts(filter?: string): Script[] {
  return readdirSync(SCRIPTS_DIR)
    .filter((f) => f.endsWith('.gfs') && (!filter || new RegExp(filter).test(f)))
    .sort()
    .map((f) => {
      const text = readFileSync(join(SCRIPTS_DIR, f), 'utf8');
      const m = /^#@ args: (.*)$/m.exec(text);
      return { name: f.replace(/\.gfs$/, ''), text, args: m ? m[1]!.trim().split(/\s+/) : null };
    });
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<ToolRun> {
  const t0 = Date.now();
  return new Promise((done) => {
    execFile(cmd, args, { cwd, env, timeout: scaled(600_000), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      done({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/**
 * A fresh directory with a qcow2 overlay of the test guest and a blank 256
 * MiB raw disk. The guest is linked in beside its overlay: guestsh follows a
 * backing file only inside the image's own directory (without --allow-backing).
 */
function workdir(base: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'guestsh-corpus-'));
  try {
    linkSync(base, join(dir, 'base.qcow2'));
  } catch {
    copyFileSync(base, join(dir, 'base.qcow2')); // another filesystem
  }
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', join(dir, 'disk.qcow2')]);
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'blank.img'), '256M']);
  return dir;
}

const TOOLS = {
  guestfish: (args: string[], cwd: string) =>
    run('guestfish', args, cwd, { ...process.env, LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg', LANG: 'C.UTF-8' }),
  guestsh: (args: string[], cwd: string) => run('node', [GUESTSH, ...args], cwd, { ...process.env, LANG: 'C.UTF-8' }),
};

/** Runs both tools on one job (same script file, each in its own fresh workdir) side by side. */
async function both(base: string, script: string, args: (dir: string) => string[]): Promise<{ guestfish: ToolRun; guestsh: ToolRun; dirs: string[] }> {
  const dirs = [workdir(base), workdir(base)];
  for (const d of dirs) writeFileSync(join(d, 'script.gfs'), script);
  const [guestfish, guestsh] = await Promise.all([
    TOOLS.guestfish([...args(dirs[0]!), '-f', 'script.gfs'], dirs[0]!),
    TOOLS.guestsh([...args(dirs[1]!), '-f', 'script.gfs'], dirs[1]!),
  ]);
  return { guestfish, guestsh, dirs };
}

function splitBatch(stdout: string, names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | null = null;
  let buf: string[] = [];
  const flush = (): void => {
    if (current !== null) out.set(current, buf.join(''));
  };
  for (const line of stdout.split(/(?<=\n)/)) {
    const m = /^==== (\S+)\n$/.exec(line);
    if (m && names.includes(m[1]!)) {
      flush();
      current = m[1]!;
      buf = [];
    } else buf.push(line);
  }
  flush();
  return out;
}

export async function runCorpus(filter?: string, log: (s: string) => void = () => {}): Promise<ScriptResult[]> {
  const images = await ensureGuest('debian');
  const base = resolve(images.qcow2);
  const scripts = loadScripts(filter);
  const results: ScriptResult[] = [];
  const keep = process.env.GUESTSH_CORPUS_KEEP === '1';

  const batch = scripts.filter((s) => s.args === null);
  if (batch.length) {
    let text = 'run\n';
    for (const s of batch) text += `echo ==== ${s.name}\n-umount-all\n${s.text}${s.text.endsWith('\n') ? '' : '\n'}`;
    const r = await both(base, text, () => ['--format=qcow2', '-a', 'disk.qcow2', '--format=raw', '-a', 'blank.img']);
    log(`batch of ${batch.length}: guestfish ${r.guestfish.ms} ms (exit ${r.guestfish.code}), guestsh ${r.guestsh.ms} ms (exit ${r.guestsh.code})`);
    if (r.guestfish.code || r.guestsh.code) log(`guestfish stderr:\n${r.guestfish.stderr}\nguestsh stderr:\n${r.guestsh.stderr}`);
    const names = batch.map((s) => s.name);
    const gf = splitBatch(r.guestfish.stdout, names);
    const gs = splitBatch(r.guestsh.stdout, names);
    for (const n of names) {
      results.push({
        name: n,
        guestfish: { code: r.guestfish.code, stdout: gf.get(n) ?? '<missing>' },
        guestsh: { code: r.guestsh.code, stdout: gs.get(n) ?? '<missing>' },
      });
    }
    if (!keep) for (const d of r.dirs) rmSync(d, { recursive: true, force: true });
  }
  for (const s of scripts.filter((x) => x.args !== null)) {
    const r = await both(base, s.text, (dir) =>
      s.args!.map((a) => a.replaceAll('$DISK', join(dir, 'disk.qcow2')).replaceAll('$BLANK', join(dir, 'blank.img'))),
    );
    log(`${s.name}: guestfish ${r.guestfish.ms} ms (exit ${r.guestfish.code}), guestsh ${r.guestsh.ms} ms (exit ${r.guestsh.code})`);
    results.push({
      name: s.name,
      guestfish: { code: r.guestfish.code, stdout: r.guestfish.stdout },
      guestsh: { code: r.guestsh.code, stdout: r.guestsh.stdout },
    });
    if (!keep) for (const d of r.dirs) rmSync(d, { recursive: true, force: true });
  }
  return results;
}

/** Identical stdout and exit status, and the script actually ran in both. */
export function sameResult(r: ScriptResult): boolean {
  if (r.guestfish.stdout === '<missing>' || r.guestsh.stdout === '<missing>') return false;
  return r.guestfish.stdout === r.guestsh.stdout && r.guestfish.code === r.guestsh.code;
}

export function copyScript(name: string, to: string): void {
  copyFileSync(join(SCRIPTS_DIR, `${name}.gfs`), to);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const results = await runCorpus(process.argv[2], (s) => console.error(s));
  let pass = 0;
  for (const r of results) {
    const same = sameResult(r);
    if (same) pass++;
    else {
      console.log(`--- ${r.name}: exit guestfish ${r.guestfish.code} guestsh ${r.guestsh.code}`);
      console.log(`guestfish:\n${r.guestfish.stdout}\nguestsh:\n${r.guestsh.stdout}`);
    }
  }
  console.log(`${pass}/${results.length} identical`);
}
