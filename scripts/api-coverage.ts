// Prints how many public libguestfs actions the call-coverage table
// (test/calls/) exercises against the real appliance, and why the rest are not.
import { coverage } from '../test/calls/index.js';

const cov = coverage();
const pct = ((100 * cov.exercised.length) / cov.publicCount).toFixed(1);
console.log(`exercised ${cov.exercised.length} / public ${cov.publicCount} (${pct}%)`);
console.log(`\nnot exercised (${cov.notExercised.length}):`);
for (const [name, reason] of cov.notExercised) console.log(`  ${name}: ${reason}`);
if (cov.unaccounted.length) console.log(`\nUNACCOUNTED (neither exercised nor listed): ${cov.unaccounted.join(' ')}`);
if (cov.unknown.length) console.log(`\nUNKNOWN names in the table: ${cov.unknown.join(' ')}`);
if (cov.unaccounted.length || cov.unknown.length) process.exitCode = 1;
