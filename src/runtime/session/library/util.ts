// Small pieces the library-side actions share: the "not supported" error,
// collecting a FileOut stream into memory, decoding a stream of XDR
// structs, splitting long name lists into daemon-sized batches.

import type { CallTransfer } from '../../../spec/values.js';
import { decodeRet } from '../../protocol/codec.js';
import { XdrReader } from '../../protocol/xdr.js';
import { UsageError } from '../../errors.js';
import type { SessionHost } from '../host.js';

/** The one wording every refusal uses, so scripts and the README can rely on it. */
export function notSupported(action: string, reason: string): UsageError {
  return new UsageError(`${action}: not supported in guestsh: ${reason}`);
}

/** Runs a call whose FileOut argument is '-' and collects what it streams. */
export async function collectFileOut(run: (transfer: CallTransfer) => Promise<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await run({ fileOut: (c) => void chunks.push(Buffer.from(c)) });
  return Buffer.concat(chunks);
}

export function downloadToBuffer(host: SessionHost, path: string): Promise<Buffer> {
  return collectFileOut((t) => host.g.download(path, '-', t));
}

/** \0-terminated strings (ls0, find0) into a list. */
export function splitNul(buf: Buffer): string[] {
  const out = buf.toString('utf8').split('\0');
  out.pop(); // after the last terminator
  return out;
}

/** Sorts like C's strcmp on UTF-8 bytes (what libguestfs's sort_strings does). */
export function byteSort(list: string[]): string[] {
  return list.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/**
 * A file holding XDR-encoded structs back to back, as guestfsd writes them.
 * `T` is the generated interface of `struct`; the codec decodes by the same
 * spec entry that interface was generated from.
 */
export function decodeStructStream<T>(buf: Buffer, struct: string): T[] {
  const r = new XdrReader(buf);
  const out: T[] = [];
  while (r.remaining > 0) out.push(decodeRet({ kind: 'RStruct', struct }, r) as T);
  return out;
}

/** Calls `fn` on successive slices of at most `max` names, concatenating results. */
export async function batched<T>(names: readonly string[], max: number, fn: (slice: string[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < names.length; i += max) out.push(...(await fn(names.slice(i, i + max))));
  return out;
}

/** A one-shot async iterable over a buffer (for FileIn arguments). */
export function fromBuffer(buf: Buffer): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      if (buf.length) yield buf;
    },
  };
}
