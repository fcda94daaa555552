#!/usr/bin/env node
// Recipes run in isolated-vm, which needs V8's startup snapshot off; re-run
// node with the flag when it is missing rather than asking every caller for it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === 'run' && !process.execArgv.includes('--no-node-snapshot')) {
  const r = spawnSync(process.execPath, ['--no-node-snapshot', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? (r.signal ? 128 + 9 : 1));
} else {
  await import('../dist/src/cli.js');
}
