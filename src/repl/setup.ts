// What the command line's image options become: the drives and mounts to
// open (runtime/open does the opening), LUKS keys read from stdin or the
// terminal, and the banner the interactive shell shows after -i.

import { createInterface } from 'node:readline';
import type { Session } from '../runtime/session/session.js';
import type { OpenOptions } from '../runtime/open/open.js';
import { CommandFailed } from '../commands/context.js';
import type { Options } from './options.js';
import { preparedDrive } from './prepared.js';

/** The images, mounts and inspection the options ask for. */
export function openOptions(opts: Options, keys: KeyReader): OpenOptions {
  return {
    drives: opts.drives.map((d) => (d.kind === 'add' ? { path: d.path, format: d.format } : preparedDrive(d))),
    readonly: opts.readonly,
    inspect: opts.inspector,
    mounts: opts.mounts,
    keys: (device) => keys.read(device),
    warn: (line) => process.stderr.write(`guestsh: ${line}\n`),
  };
}

/** Reads passphrases: one line each from stdin (--keys-from-stdin), else from the terminal. */
export class KeyReader {
  private lines: string[] | null = null;
  constructor(private readonly opts: Pick<Options, 'keysFromStdin' | 'echoKeys'>) {}

  async read(device: string): Promise<string> {
    if (this.opts.keysFromStdin) {
      if (this.lines === null) {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        this.lines = Buffer.concat(chunks).toString('utf8').split('\n');
      }
      const l = this.lines.shift();
      if (l === undefined) throw new CommandFailed(`no key for ${device} on stdin`);
      return l;
    }
    if (!process.stdin.isTTY) throw new CommandFailed(`${device} is encrypted: give its key with --keys-from-stdin`);
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const echo = this.opts.echoKeys;
    // Hide the typed characters unless --echo-keys.
    const out = rl as unknown as { _writeToOutput?: (s: string) => void };
    const prompt = `Enter key or passphrase ("${device}"): `;
    if (!echo) out._writeToOutput = (s: string) => void (s.startsWith(prompt) ? process.stderr.write(prompt) : undefined);
    try {
      return await new Promise<string>((resolve) => rl.question(prompt, resolve));
    } finally {
      rl.close();
      if (!echo) process.stderr.write('\n');
    }
  }
}

/** The interactive banner's inspection lines. */
export async function inspectBanner(session: Session, root: string): Promise<string> {
  const g = session.g;
  let out = '';
  try {
    const name = await g.inspectGetProductName(root);
    if (name && name !== 'unknown') out += `Operating system: ${name}\n`;
    const mps = Object.entries(await g.inspectGetMountpoints(root));
    mps.sort((a, b) => a[0].toLowerCase().localeCompare(b[0].toLowerCase()));
    for (const [mp, dev] of mps) {
      const shown = await g.canonicalDeviceName(dev).catch(() => dev);
      out += `${shown} mounted on ${mp}\n`;
    }
  } catch {
    // the banner is best effort
  }
  return out;
}
