#!/usr/bin/env node
// TypeScript runs in isolated-vm (recipes, and lines typed at the interactive
// prompt), which needs V8's startup snapshot off; re-run node with the flag
// when it is missing rather than asking every caller for it. Only `run` and a
// terminal on stdin (a possible prompt) need it. The parent stays only to
// pass signals on (Ctrl-C ends a --watch loop cleanly) and to hand back the
// child's exit status.
import { spawn } from 'node:child_process';
import { isatty } from 'node:tty';
import { fileURLToPath } from 'node:url';

const needsIsolates = process.argv[2] === 'run' || isatty(0);
if (needsIsolates && !process.execArgv.includes('--no-node-snapshot')) {
  const child = spawn(process.execPath, ['--no-node-snapshot', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143)));
} else {
  await import('../dist/src/cli.js');
}
