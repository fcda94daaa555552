// Small pieces the library-side actions share: the action signature, the
// "not supported" error, collecting a FileOut stream into memory, decoding a
// stream of XDR structs, splitting long name lists into daemon-sized batches.

import type { ArgValue, OptArgs, RetValue, StructValue } from '../../../spec/values.js';
import { decodeRet } from '../../protocol/codec.js';
import { XdrReader } from '../../protocol/xdr.js';
import { UsageError } from '../../errors.js';
import type { Session } from '../session.js';

export type LibraryAction = (s: Session, args: readonly ArgValue[], opt: OptArgs) => Promise<RetValue> | RetValue;

/** The one wording every refusal uses, so scripts and the README can rely on it. */
export function notSupported(action: string, reason: string): UsageError {
  return new UsageError(`${action}: not supported in guestsh: ${reason}`);
}

/** Runs a daemon action with its FileOut argument given as '-', collecting the stream. */
export async function callToBuffer(s: Session, action: string, args: readonly ArgValue[], opt: OptArgs = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await s.call(action, args, opt, { fileOut: (c) => void chunks.push(Buffer.from(c)) });
  return Buffer.concat(chunks);
}

export function downloadToBuffer(s: Session, path: string): Promise<Buffer> {
  return callToBuffer(s, 'download', [path, '-']);
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

/** A file holding XDR-encoded structs back to back, as guestfsd writes them. */
export function decodeStructStream(buf: Buffer, struct: string): StructValue[] {
  const r = new XdrReader(buf);
  const out: StructValue[] = [];
  while (r.remaining > 0) out.push(decodeRet({ kind: 'RStruct', struct }, r) as StructValue);
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
