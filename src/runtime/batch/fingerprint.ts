// What an image's run depends on, as one hash: the image's content, the
// code the recipe runs (its own modules and the standard library's, as
// compiled), the params, the format and how it is mounted. Recorded beside
// the results after a committed run (of the image as it was left), so that
// re-running the job recognises the images it has already done: same
// fingerprint, nothing to do. The queue uses the fingerprint of the image as
// it is now as the job's id, so a resubmission adds nothing.
//
// Hashing a large image is a full read; the record also keeps the file's
// stamp (device, inode, size, mtime, ctime), and while the stamp is the same
// the content is too (ctime cannot be set back), so a re-run of a finished
// job reads no image at all.

import { createHash } from 'node:crypto';
import { createReadStream, closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { BatchImage, BatchMount } from './job.js';

/**
 * The stamp of a file: equal stamps mean equal contents. 'host' is for one
 * host's records; 'shared' leaves out the device and inode numbers, which
 * differ between hosts mounting the same shared storage.
 */
export async function stampOf(path: string, scope: 'host' | 'shared' = 'host'): Promise<string> {
  const st = await stat(path, { bigint: true });
  const times = `${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  return scope === 'host' ? `${st.dev}:${st.ino}:${times}` : times;
}

/** sha256 of the image's bytes. */
export async function contentHash(path: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The digest of the code a recipe runs, from its linked modules (order and paths do not matter, only what runs). */
export function recipeDigest(linkedCode: readonly string[]): string {
  const each = linkedCode.map((c) => createHash('sha256').update(c).digest('hex')).sort();
  return createHash('sha256').update(each.join('\n')).digest('hex');
}

/** Everything of an image's run but the image's content. */
export function runDigest(recipe: string, image: Pick<BatchImage, 'format' | 'params'>, mount: BatchMount): string {
  const params = Object.entries(image.params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256')
    .update(JSON.stringify({ v: 1, recipe, format: image.format ?? null, params, mount }))
    .digest('hex');
}

export function fingerprint(run: string, content: string): string {
  return createHash('sha256').update(`${run}\n${content}`).digest('hex').slice(0, 40);
}

export interface DoneRecord {
  kind: 'done';
  image: string;
  /** The fingerprint of the image as the run left it. */
  fingerprint: string;
  /** The content hash and stamp it was computed from. */
  content: string;
  stamp: string;
  at: string;
}

/**
 * Written just before an image's commit begins: from here the image may be
 * changed. If the batch dies before the image's done record, the next run
 * tells a commit that landed (the stamp moved) from one that never began.
 */
export interface CommittingRecord {
  kind: 'committing';
  image: string;
  /** runDigest of the run that was committing. */
  run: string;
  /** The image's stamp before the merge. */
  stamp: string;
  at: string;
}

export type ImageRecord = DoneRecord | CommittingRecord;

/**
 * What a job knows of its images' runs, one JSON line each, appended (and
 * synced) as each image reaches its commit and as it finishes, so that a
 * batch killed half-way, or a power loss, still knows every image it
 * finished. A line cut short by a crash is ignored; the last line for an
 * image wins.
 */
export class DoneFile {
  private constructor(
    readonly path: string,
    private readonly records: Map<string, ImageRecord>,
  ) {}

  static async open(path: string): Promise<DoneFile> {
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw e;
    });
    const records = new Map<string, ImageRecord>();
    for (const line of text.split('\n')) {
      try {
        const r = JSON.parse(line) as ImageRecord;
        const good =
          typeof r.image === 'string' && typeof r.stamp === 'string' &&
          ((r.kind === 'done' && typeof r.fingerprint === 'string' && typeof r.content === 'string') || (r.kind === 'committing' && typeof r.run === 'string'));
        if (good) records.set(r.image, r);
      } catch {
        // a line a crash cut short, or an empty one
      }
    }
    return new DoneFile(path, records);
  }

  get(image: string): ImageRecord | undefined {
    return this.records.get(image);
  }

  /** Records a step of an image durably before the batch goes on. */
  add(r: Omit<DoneRecord, 'at'> | Omit<CommittingRecord, 'at'>): void {
    const rec = { ...r, at: new Date().toISOString() } as ImageRecord;
    this.records.set(r.image, rec);
    const fd = openSync(this.path, 'a', 0o644);
    try {
      writeSync(fd, `${JSON.stringify(rec)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** Where a results file's fingerprints live. */
export function doneFileOf(results: string): string {
  return `${results}.fingerprints`;
}

/**
 * Whether `image` is as the recorded run left it, for a run described by
 * `run`: its fingerprint now, and whether it matches the record. The image
 * is read only when its stamp has moved since the record.
 */
export async function currentFingerprint(image: string, run: string, done: DoneFile | null, signal?: AbortSignal): Promise<{ fingerprint: string; content: string; stamp: string; matches: boolean }> {
  const stamp = await stampOf(image);
  const rec = done?.get(image);
  const known = rec?.kind === 'done' ? rec : undefined;
  const content = known && known.stamp === stamp ? known.content : await contentHash(image, signal);
  const fp = fingerprint(run, content);
  return { fingerprint: fp, content, stamp, matches: known?.fingerprint === fp };
}
