// libguestfs's own shell tests with guestsh as `guestfish` (test/upstream/):
// every test tests.tsv selects (those that pass with the real guestfish on
// these machines) must pass. The source package is fetched by run.sh at
// test time; nothing of libguestfs is in the repository. The table's
// excluded rows say why each is left out; this file checks that every shell
// test the package has is in the table, so a new one cannot go unnoticed.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { scaled } from './slowdown.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'upstream');
const rows = readFileSync(join(here, 'tests.tsv'), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => {
    const [test, status, reason] = l.split('\t');
    return { test: test!, status: status!, reason: reason ?? '' };
  });
const selected = rows.filter((r) => r.status === 'run').map((r) => r.test);
/** One test's bound: a few launches each, resumed from the saved appliance. */
const PER_TEST_S = 300;

interface Outcome {
  verdict: string;
  detail: string;
}

function runUpstream(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile('bash', [join(here, 'run.sh'), ...args], { timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, GUESTSH_UPSTREAM_TIMEOUT: String(Math.round(scaled(PER_TEST_S * 1000) / 1000)) } }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      done({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

/** run.sh's report: a `PASS|FAIL|SKIP NAME SECONDS …` line per test, a failure's log indented after it. */
function outcomes(stdout: string): Map<string, Outcome> {
  const map = new Map<string, Outcome>();
  let last: Outcome | null = null;
  for (const line of stdout.split('\n')) {
    const m = /^(PASS|FAIL|SKIP) (\S+) (.*)$/.exec(line);
    if (m) {
      last = { verdict: m[1]!, detail: m[3]! };
      map.set(m[2]!, last);
    } else if (last && line.startsWith('    ')) {
      last.detail += `\n${line}`;
    }
  }
  return map;
}

describe("libguestfs's shell tests, guestsh as guestfish", () => {
  it('the table lists each shell test of the source package once, with a reason for every excluded one', async () => {
    const names = rows.map((r) => r.test);
    expect(new Set(names).size).toBe(names.length);
    for (const r of rows) {
      expect(['run', 'excluded']).toContain(r.status);
      if (r.status === 'excluded') expect(r.reason.length, r.test).toBeGreaterThan(10);
    }
    const listed = await runUpstream(['--list'], scaled(120_000));
    // The first call in a fresh HOME fetches the source package and says so; never an error.
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stderr).not.toMatch(/^run\.sh: error/m);
    expect(listed.stdout.split('\n').filter(Boolean).sort()).toEqual([...names].sort());
  });

  it(`each selected test passes (${selected.length})`, async () => {
    const r = await runUpstream([], scaled(PER_TEST_S * 1000) * selected.length);
    const got = outcomes(r.stdout);
    const failed = selected.filter((t) => got.get(t)?.verdict !== 'PASS');
    expect(failed.map((t) => `${t}: ${got.get(t)?.verdict ?? 'not run'} ${got.get(t)?.detail ?? r.stderr}`)).toEqual([]);
    expect(r.code).toBe(0);
  }, scaled(PER_TEST_S * 1000) * selected.length + scaled(60_000));
});
