#!/usr/bin/env node
// TypeScript runs in isolated-vm (recipes, and lines typed at the interactive
// prompt), which needs V8's startup snapshot off; re-run node with the flag
// when it is missing rather than asking every caller for it. Only the verbs
// that run recipes (`run`, `batch`, `worker`) and a terminal on stdin (a
// possible prompt) need it. The parent stays only to
// pass signals on (Ctrl-C ends a --watch loop cleanly) and to hand back the
// child's exit status.
//
// The child must not outlive the parent: a parent killed by SIGKILL passes
// nothing on, and a run left going would commit a change its user killed.
// Node has no prctl(PR_SET_PDEATHSIG), so the child holds one end of a pipe
// whose other end only the parent has: the kernel closes it when the parent
// dies, however it dies, and the child takes the end of file as a SIGHUP
// (its parent hung up), which stops it cleanly (src/repl/stop.ts).
import { Socket } from 'node:net';
import { isatty } from 'node:tty';
import { fileURLToPath } from 'node:url';

const LIFELINE = 'GUESTSH_LIFELINE_FD';
const CALLED_AS = 'GUESTSH_CALLED_AS';
let hungUp = false;
const hangUp = () => {
  if (hungUp) return;
  hungUp = true;
  process.kill(process.pid, 'SIGHUP');
};

// --remote only talks to a resident session (src/remote-cli.ts), whatever stdin is.
const remote = process.argv[2]?.startsWith('--remote') ?? false;
const needsIsolates = !remote && (['run', 'batch', 'worker'].includes(process.argv[2]) || isatty(0));
if (needsIsolates && !process.execArgv.includes('--no-node-snapshot')) {
  // Loaded here only: every --remote of a pipeline would pay for it.
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--no-node-snapshot', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    // Who the worker's Stop.confirm() checks is still there (src/repl/stop.ts), and
    // the name it was called by (guestsh linked as guestfish speaks guestfish's error dialect).
    env: { ...process.env, [LIFELINE]: '3', [CALLED_AS]: process.argv[1], GUESTSH_STARTER: `${process.pid}:${process.env.npm_lifecycle_event === undefined ? '' : process.ppid}` },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143)));
  watchNpmShell();
} else {
  const fd = process.env[LIFELINE];
  // Not for the processes this one starts (a `!guestsh …` host command is a guestsh of its own).
  delete process.env[LIFELINE];
  if (process.env[CALLED_AS] !== undefined) process.argv[1] = process.env[CALLED_AS];
  delete process.env[CALLED_AS];
  if (fd !== undefined) {
    const lifeline = new Socket({ fd: Number(fd), readable: true, writable: false });
    lifeline.on('end', hangUp);
    lifeline.on('close', hangUp);
    lifeline.resume();
    lifeline.unref();
  } else {
    watchNpmShell();
  }
  await import(remote ? '../dist/src/remote-cli.js' : '../dist/src/cli.js');
}

/**
 * npm (npx, npm run) runs a bin through `sh -c`, forwards a signal it gets
 * to that shell only, and the shell dies of it without passing it on: the
 * only trace is that this process is orphaned. Under npm, then, losing the
 * parent is a hang-up. (Elsewhere it is not: `nohup guestsh … &` must go on.)
 */
function watchNpmShell() {
  if (process.env.npm_lifecycle_event === undefined) return;
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) hangUp();
  }, 100).unref();
}
