// Qmp.connect() against a stand-in for qemu's QMP socket: a qemu killed
// between accepting the connection and greeting cannot be timed for real,
// and before it was handled the connect waited out the whole launch timeout
// (a referenced timer that held a stopped `guestsh run` open for minutes).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Qmp, QmpClosedError } from '../../src/runtime/qemu/qmp.js';

const dir = mkdtempSync(join(tmpdir(), 'qmp-test-'));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A socket that accepts and then does `onConnection` (never greets). */
async function standIn(name: string, onConnection: (s: import('node:net').Socket) => void): Promise<string> {
  const path = join(dir, name);
  const server = createServer(onConnection);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

// A launch timeout no test would wait for: only a prompt answer passes.
const TEN_MINUTES = 600_000;

describe('Qmp.connect()', () => {
  it('gives up as soon as the socket closes before the greeting', async () => {
    const path = await standIn('closes.sock', (s) => s.destroy());
    await expect(Qmp.connect(path, TEN_MINUTES)).rejects.toBeInstanceOf(QmpClosedError);
  });

  it('gives up when cancelled while it waits for a greeting that does not come', async () => {
    const cancel = new AbortController();
    const path = await standIn('silent.sock', () => setTimeout(() => cancel.abort(), 50));
    await expect(Qmp.connect(path, TEN_MINUTES, cancel.signal)).rejects.toThrow(/abandoned|qemu is gone/);
  });
});
