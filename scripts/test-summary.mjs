// Prints the one closing line CI reads, from vitest's own JSON results.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.log('0 passed, 1 failed');
  console.error(`test-summary: no vitest results in ${file}: ${e.message}`);
  process.exit(1);
}
const skipped = r.numPendingTests + r.numTodoTests;
// A test file that fails to load counts as a failure even though it ran no test.
const brokenFiles = r.testResults.filter((f) => f.status === 'failed' && f.assertionResults.length === 0).length;
const failed = r.numFailedTests + brokenFiles;
console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
