// Build test guests: `npx tsx testdata/build.ts debian`. Prints each guest's
// image paths (raw, then qcow2; for `bootable` then its kernel and initramfs)
// on stdout, one per line; progress goes to stderr.

import { BuildError, forwardSignalsToChildren } from './build-support.js';
import { GUEST_NAMES, ensureGuest } from './index.js';

async function main(names: string[]): Promise<void> {
  if (names.length === 0) throw new BuildError(`usage: build.ts <guest>...  (guests: ${GUEST_NAMES.join(', ')})`);
  forwardSignalsToChildren();
  for (const name of names) {
    const images = await ensureGuest(name);
    process.stdout.write(`${images.raw}\n${images.qcow2}\n`);
    if ('kernel' in images && 'initrd' in images) process.stdout.write(`${String(images.kernel)}\n${String(images.initrd)}\n`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`testdata: error: ${message}\n`);
  process.exitCode = 1;
});
