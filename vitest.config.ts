import { defineConfig } from 'vitest/config';
import { measureSlowdown } from './test/slowdown.js';

// Every wait in the suite scales with how slow this machine is right now
// (test/slowdown.ts), including the appliance's own launch timeout.
if (!process.env.GUESTSH_TEST_SLOWDOWN) {
  const m = measureSlowdown();
  process.env.GUESTSH_TEST_SLOWDOWN = String(m.factor);
  console.log(`test waits scaled by ${m.factor} (CPU ${m.cpu.toFixed(2)}x the reference, load ${m.loadPerCore.toFixed(2)} per core)`);
}
const slowdown = Number(process.env.GUESTSH_TEST_SLOWDOWN);
process.env.GUESTSH_LAUNCH_TIMEOUT ??= String(Math.round(300 * slowdown));

// Two projects. `unit` needs no VM and no root (spec, generated types,
// layering, parsers, tables): seconds, for whoever changes the code
// (`npm run test:unit`). `vm` is everything that boots the appliance: each
// file boots its own (TCG, ~12 s), so files run in separate processes, two at
// a time on the two cores these machines have. `./dev test` runs both.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    // isolated-vm (recipes) needs node without its startup snapshot.
    execArgv: ['--no-node-snapshot'],
    reporters: ['default', ['json', { outputFile: '.cache/vitest-results.json' }]],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 60_000 * slowdown },
      },
      {
        extends: true,
        test: {
          name: 'vm',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          testTimeout: 120_000 * slowdown,
          hookTimeout: 300_000 * slowdown,
        },
      },
    ],
  },
});
