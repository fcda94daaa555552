// Stop.confirm(): a hang-up whose news has not reached the event loop yet
// is heard synchronously at the moment it is asked. The worker below never
// yields to its event loop after saying "ready" (its lifeline's end of file
// and every signal handler stay unheard), so only confirm() can notice that
// its starter (bin/guestsh.js's parent, here a stand-in) or npm's shell went away.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const STOP = join(import.meta.dirname, '..', '..', 'src', 'repl', 'stop.ts');
const dir = mkdtempSync(join(tmpdir(), 'stop-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Asks confirm() in a loop that never yields, for SPIN_MS; prints what it heard.
const worker = join(dir, 'worker.mts');
writeFileSync(
  worker,
  `import { writeSync } from 'node:fs';
import { Stop } from ${JSON.stringify(STOP)};
const stop = new Stop();
writeSync(1, 'ready\\n');
const until = Date.now() + Number(process.env.SPIN_MS);
let heard = 'nothing';
while (Date.now() < until) {
  stop.confirm();
  if (stop.signal.aborted) { heard = 'heard ' + stop.received; break; }
}
writeSync(1, heard + '\\n');
`,
);
// bin/guestsh.js's parent, as far as the worker sees it: it names itself (and npm's shell, its parent) and waits.
const starter = join(dir, 'starter.mjs');
writeFileSync(
  starter,
  `import { execFileSync, spawn } from 'node:child_process';
const npmShell = process.env.AS_NPM ? process.ppid : '';
spawn(process.execPath, ['--import', 'tsx', ${JSON.stringify(worker)}], { stdio: 'inherit', env: { ...process.env, GUESTSH_STARTER: process.pid + ':' + npmShell } });
setInterval(() => {}, 1000);
`,
);

/** Starts sh (npm's `sh -c`) → starter → worker; once the worker is ready, kills `victim`; returns the worker's verdict. */
async function trial(victim: 'starter' | 'npm shell' | 'none', spinMs: number): Promise<string> {
  const sh = spawn('sh', ['-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(starter)}; :`], {
    env: { ...process.env, SPIN_MS: String(spinMs), ...(victim === 'npm shell' ? { AS_NPM: '1' } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // sh's "Killed" notices, and the worker's own errors, which the verdict then quotes.
  let err = '';
  sh.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = once(sh, 'exit');
  const lines = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => void (out.split('\n').length > n && resolve());
      sh.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        check();
      });
      check();
    });
  await lines(1);
  const starterPid = Number(execFileSync('pgrep', ['-P', String(sh.pid), '-f', starter], { encoding: 'utf8' }).trim());
  try {
    if (victim === 'starter') process.kill(starterPid, 'SIGKILL');
    if (victim === 'npm shell') process.kill(sh.pid!, 'SIGKILL');
    await lines(2);
    const verdict = out.split('\n')[1]!;
    return /^(heard|nothing)/.test(verdict) ? verdict : `${verdict} (stderr: ${err})`;
  } finally {
    for (const pid of [starterPid, sh.pid!]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await exited;
  }
}

describe('Stop.confirm()', () => {
  it('hears the death of the process that started the worker, with no turn of the event loop', async () => {
    expect(await trial('starter', 20_000)).toBe('heard SIGHUP');
  });

  it("under npm, hears the death of npm's shell while the starter lives on, orphaned", async () => {
    expect(await trial('npm shell', 20_000)).toBe('heard SIGHUP');
  });

  it('hears nothing while both are there', async () => {
    expect(await trial('none', 1500)).toBe('nothing');
  });
});
