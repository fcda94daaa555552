// Where commands come from: a script file, standard input, or the
// interactive line editor. Heredoc uploads (-<<END), "-" FileIn arguments and
// keys read from the same source as the commands, as guestfish does (with -f,
// the script file is guestfish's stdin).

import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

export interface LineSource {
  /** Next line without its newline, or null at end of input. */
  readLine(prompt?: string): Promise<string | null>;
  /** Everything not read yet, as bytes (for FileIn "-"). */
  rest(): AsyncIterable<Uint8Array>;
  /** A line typed at this source's terminal without showing it (a passphrase), where the source has one. */
  readSecret?(prompt: string, echo: boolean): Promise<string | null>;
  /** Name for error messages (the file, or *stdin*). */
  readonly name: string;
  lineNo: number;
}

/** Lines from a byte stream, buffering only what has not been consumed. */
export class StreamLineSource implements LineSource {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private iter: AsyncIterator<Buffer | string> | null = null;
  lineNo = 0;

  constructor(
    private readonly stream: Readable,
    readonly name: string,
  ) {}

  static file(path: string): StreamLineSource {
    return new StreamLineSource(createReadStream(path), path);
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    // Created on first use: an unused source must not start consuming its stream.
    this.iter ??= this.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
    const r = await this.iter.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  async readLine(): Promise<string | null> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0) {
        const line = this.buf.subarray(0, nl).toString('utf8');
        this.buf = this.buf.subarray(nl + 1);
        this.lineNo++;
        return line;
      }
      if (!(await this.fill())) {
        if (this.buf.length === 0) return null;
        const line = this.buf.toString('utf8');
        this.buf = Buffer.alloc(0);
        this.lineNo++;
        return line;
      }
    }
  }

  async *rest(): AsyncIterable<Uint8Array> {
    if (this.buf.length) {
      const b = this.buf;
      this.buf = Buffer.alloc(0);
      yield b;
    }
    while (await this.fill()) {
      const b = this.buf;
      this.buf = Buffer.alloc(0);
      yield b;
    }
  }
}

/** Lines from a string (the output of <!cmd, or tests). */
export class StringLineSource implements LineSource {
  private lines: string[];
  lineNo = 0;
  constructor(
    text: string,
    readonly name: string,
  ) {
    this.lines = text.split('\n');
    if (this.lines.length && this.lines[this.lines.length - 1] === '') this.lines.pop();
  }
  async readLine(): Promise<string | null> {
    const l = this.lines.shift();
    if (l === undefined) return null;
    this.lineNo++;
    return l;
  }
  async *rest(): AsyncIterable<Uint8Array> {
    const text = this.lines.map((l) => `${l}\n`).join('');
    this.lines = [];
    if (text) yield Buffer.from(text);
  }
}
