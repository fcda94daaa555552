import { defineConfig } from 'vitest/config';

// Each test file boots its own appliance (TCG, ~12 s), so files run in
// separate processes, two at a time on the two cores these machines have.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    // isolated-vm (recipes) needs node without its startup snapshot.
    execArgv: ['--no-node-snapshot'],
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default', ['json', { outputFile: '.cache/vitest-results.json' }]],
  },
});
