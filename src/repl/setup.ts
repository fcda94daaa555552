// What the command line's image options become: the drives and mounts to
// open (runtime/open does the opening), LUKS keys read from stdin or the
// terminal, and the banner the interactive shell shows after -i.

import { openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { ReadStream, WriteStream } from 'node:tty';
import type { Session } from '../runtime/session/session.js';
import type { OpenOptions } from '../runtime/open/open.js';
import { CommandFailed } from '../commands/context.js';
import type { Options } from './options.js';
import { type LineSource, StreamLineSource } from './input.js';
import { preparedDrive } from './prepared.js';

/** The images, mounts and inspection the options ask for. */
export function openOptions(opts: Options, keys: KeyReader): OpenOptions {
  return {
    drives: opts.drives.map((d) => (d.kind === 'add' ? { path: d.path, format: d.format } : preparedDrive(d))),
    readonly: opts.readonly,
    inspect: opts.inspector,
    mounts: opts.mounts,
    keys: (device, uuid) => keys.forDevice(device, uuid),
    warn: (line) => process.stderr.write(`guestsh: ${line}\n`),
  };
}

/**
 * Reads passphrases as guestfish does (-i's keys and a command's Key
 * arguments alike): at the terminal (/dev/tty, the typing hidden unless
 * --echo-keys); with --keys-from-stdin, or when there is no terminal, one
 * line of standard input, which is the script's own when the script comes
 * from there (or -f's file, which guestfish reads as its stdin), so a key
 * is the line after its command.
 */
export class KeyReader {
  private stdinLines: LineSource | null = null;

  constructor(
    private readonly opts: Pick<Options, 'keysFromStdin' | 'echoKeys'> & Partial<Pick<Options, 'keySelectors'>>,
    /** Standard input's lines, shared with whoever else reads them (the script). */
    private readonly stdin: () => LineSource = () => (this.stdinLines ??= new StreamLineSource(process.stdin, '*stdin*')),
  ) {}

  /** The keys to try for an encrypted device: those --key gives for its name or UUID, in order, else the one read for it. */
  async forDevice(device: string, uuid: string | null): Promise<readonly string[]> {
    const given = (this.opts.keySelectors ?? []).filter((k) => k.id === device || (uuid !== null && k.id === uuid));
    if (given.length === 0) return [await this.read(device)];
    return Promise.all(given.map(async (k) => (k.kind === 'key' ? k.value : firstLine(k.value))));
  }

  /** The key for `param` (a device, or the argument's name), read from `from` when that is the input at hand. */
  async read(param: string, from: LineSource | null = null): Promise<string> {
    const src = from ?? this.stdin();
    const prompt = `Enter key or passphrase ("${param}"): `;
    // At guestsh's own prompt the terminal is the prompt's: its line editor reads the key.
    if (src.readSecret) return (await src.readSecret(prompt, this.opts.echoKeys)) ?? noKey(param, src);
    if (!this.opts.keysFromStdin) {
      const key = await fromTerminal(prompt, this.opts.echoKeys);
      if (key !== null) return key;
    }
    return (await src.readLine()) ?? noKey(param, src);
  }
}

async function firstLine(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new CommandFailed(`--key: cannot read the key file '${file}' (${e.code})`);
  });
  return text.split('\n')[0]!;
}

function noKey(param: string, src: LineSource): never {
  throw new CommandFailed(`no key for ${param}: ${src.name} ended first (give keys one a line with --keys-from-stdin, or at a terminal)`);
}

/** One line typed at the controlling terminal, or null when the process has none. */
async function fromTerminal(prompt: string, echo: boolean): Promise<string | null> {
  let input: ReadStream;
  let output: WriteStream;
  try {
    input = new ReadStream(openSync('/dev/tty', 'r'));
    output = new WriteStream(openSync('/dev/tty', 'w'));
  } catch {
    return null;
  }
  const rl = createInterface({ input, output, terminal: true });
  // Hide the typed characters unless --echo-keys.
  const out = rl as unknown as { _writeToOutput?: (s: string) => void };
  if (!echo) out._writeToOutput = (s: string) => void (s.startsWith(prompt) ? output.write(prompt) : undefined);
  try {
    return await new Promise<string>((resolve) => rl.question(prompt, resolve));
  } finally {
    rl.close();
    if (!echo) output.write('\n');
    input.destroy();
    output.destroy();
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
