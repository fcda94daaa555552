// Images on storage several hosts share: a writer on another host shows only
// through its lock note (its flock is not in this host's /proc/locks, its
// pid means nothing here). guestsh never takes such a writer for dead: the
// status names it, and a reader waits for its merge instead of calling the
// merge interrupted. No VM.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkReadable, READER_WAIT_MS, txFiles, txStatus } from '../../src/runtime/session/transaction.js';
import { scaled } from '../slowdown.js';

const root = mkdtempSync(join(tmpdir(), 'guestsh-lock-hosts-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function image(name: string, note: { host: string; pid: number }): string {
  const img = join(root, name);
  writeFileSync(img, Buffer.alloc(1 << 20));
  const f = txFiles(img);
  writeFileSync(f.overlay, '');
  writeFileSync(f.lock, `${JSON.stringify({ ...note, started: 1, bootId: 'another-boot' })}\n`);
  return img;
}

describe('lock notes of writers on other hosts', () => {
  it('status names a writer on another host instead of calling its overlay abandoned', async () => {
    const img = image('remote.img', { host: 'build-host-2', pid: 4242 });
    expect(await txStatus(img)).toEqual({ writerPid: null, otherHostWriter: { host: 'build-host-2', pid: 4242 }, pendingOverlay: true, interruptedMerge: false });
  });

  it("a note of this host's without a lock is no writer (the kernel dropped a dead holder's flock)", async () => {
    const img = image('local.img', { host: hostname(), pid: 999_999_999 });
    expect(await txStatus(img)).toEqual({ writerPid: null, otherHostWriter: undefined, pendingOverlay: true, interruptedMerge: false });
  });

  it("a reader waits for another host's merge, and then says whose it is", async () => {
    const img = image('merging.img', { host: 'build-host-2', pid: 4242 });
    writeFileSync(txFiles(img).journal, '{}');
    await expect(checkReadable(img)).rejects.toThrow(`'${img}' is being committed into by guestsh pid 4242 on build-host-2 (if that one died, 'guestsh recover ${img}' completes its commit); try again when it has finished`);
    // That message comes only at the end of the reader's wait: a merge judged dead would be refused at once as interrupted.
  }, scaled(READER_WAIT_MS * 3));
});
