import { defineConfig } from 'vitest/config';

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
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 60_000 },
      },
      {
        extends: true,
        test: {
          name: 'vm',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
