// Job files of `guestsh batch`, checked before any image is touched: each
// mistake reported as FILE:LINE:COL: what is wrong (a usage error: exit 2),
// and a good file read into what the pool runs. No VM.
import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConcurrency, loadJob, parseJob } from '../../src/runtime/batch/job.js';
import { UsageError } from '../../src/runtime/errors.js';

const root = mkdtempSync(join(tmpdir(), 'guestsh-batch-job-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, 'imgs'));
for (const name of ['a.img', 'b.img', 'c.qcow2', 'skip-me.img']) writeFileSync(join(root, 'imgs', name), '');
linkSync(join(root, 'imgs', 'a.img'), join(root, 'a-again.img'));
writeFileSync(join(root, 'fix.gfs.ts'), 'export default async () => [];\n');
const file = join(root, 'job.yaml');

function problem(text: string): string {
  try {
    parseJob(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('the job was accepted');
}

describe('batch job files', () => {
  it('reads a full job: globs, excludes, per-image format and params, mounts, the knobs', () => {
    const job = parseJob(
      [
        'recipe: fix.gfs.ts',
        'params: { who: all, n: 3 }',
        'images:',
        '  - imgs/*.img',
        '  - path: imgs/c.qcow2',
        '    format: qcow2',
        '    params: { who: c }',
        'exclude: [imgs/skip-*]',
        'mount: ["/dev/sda1:/", "/dev/sda2:/boot:ro"]',
        'concurrency: 3',
        'timeout: 90',
        'retries: 2',
        'skip_unchanged: false',
        'on_failure: stop',
        'results: out/r.jsonl',
      ].join('\n'),
      file,
    );
    expect(job.recipe).toBe(join(root, 'fix.gfs.ts'));
    expect(job.images).toEqual([
      { path: join(root, 'imgs', 'a.img'), format: undefined, params: { who: 'all', n: '3' } },
      { path: join(root, 'imgs', 'b.img'), format: undefined, params: { who: 'all', n: '3' } },
      { path: join(root, 'imgs', 'c.qcow2'), format: 'qcow2', params: { who: 'c', n: '3' } },
    ]);
    expect(job.mount).toEqual({
      inspect: false,
      mounts: [
        { device: '/dev/sda1', mountpoint: '/', options: undefined, fstype: undefined },
        { device: '/dev/sda2', mountpoint: '/boot', options: 'ro', fstype: undefined },
      ],
    });
    expect([job.concurrency, job.timeoutMs, job.retries, job.skipUnchanged, job.onFailure, job.results]).toEqual([3, 90_000, 2, false, 'stop', join(root, 'out', 'r.jsonl')]);
  });

  it('has defaults a person expects: inspect, concurrency from the machine, skip_unchanged, continue, results beside the job', () => {
    const job = parseJob('recipe: guestsh/sysprep\nimages: [imgs/a.img]\n', file);
    expect(job.recipe).toBe('guestsh/sysprep');
    expect([job.mount, job.concurrency, job.retries, job.skipUnchanged, job.onFailure, job.results]).toEqual([
      { inspect: true }, null, 0, true, 'continue', join(root, 'job.results.jsonl'),
    ]);
  });

  it('reports a syntax error where it is', () => {
    expect(problem('recipe: fix.gfs.ts\nparams: { who: all\nimages: [imgs/a.img]\n')).toBe(`${file}:3:1: Flow map in block collection must be sufficiently indented and end with a }`);
    expect(problem('recipe: "fix.gfs.ts\nimages: [imgs/a.img]\n')).toBe(`${file}:3:1: Missing closing "quote`);
    expect(problem('recipe: fix.gfs.ts\nrecipe: other.gfs.ts\nimages: [imgs/a.img]\n')).toBe(`${file}:2:1: Map keys must be unique`);
  });

  it('reports an unknown key, at the key, with the known ones', () => {
    expect(problem('recipe: fix.gfs.ts\nimages: [imgs/a.img]\nconcurency: 2\n')).toBe(
      `${file}:3:1: unknown key 'concurency' in the job (known: recipe, params, images, exclude, mount, concurrency, timeout, memory, retries, skip_unchanged, on_failure, network, results)`,
    );
    expect(problem('recipe: fix.gfs.ts\nimages:\n  - path: imgs/a.img\n    fromat: raw\n')).toMatch(new RegExp(`^${file}:4:5: unknown key 'fromat' in an image `));
  });

  it('reports a missing recipe: no recipe key, a file that is not there, an unknown ready one', () => {
    expect(problem('images: [imgs/a.img]\n')).toMatch(new RegExp(`^${file}:1:1: the job names no recipe`));
    expect(problem('images: [imgs/a.img]\nrecipe: nothere.gfs.ts\n')).toBe(`${file}:2:9: recipe 'nothere.gfs.ts' does not exist (a .gfs.ts file, relative to the job file, or guestsh/NAME)`);
    expect(problem('recipe: guestsh/nosuch\nimages: [imgs/a.img]\n')).toMatch(new RegExp(`^${file}:1:9: unknown standard-library recipe 'guestsh/nosuch'`));
  });

  it('reports a glob that matches nothing, and a path that does not exist', () => {
    expect(problem('recipe: fix.gfs.ts\nimages:\n  - imgs/*.vmdk\n')).toBe(`${file}:3:5: 'imgs/*.vmdk' matches no file`);
    expect(problem('recipe: fix.gfs.ts\nimages:\n  - imgs/skip-*.img\nexclude: [imgs/skip-*]\n')).toBe(`${file}:3:5: 'imgs/skip-*.img' matches no file (all it matches are excluded)`);
    expect(problem('recipe: fix.gfs.ts\nimages:\n  - imgs/a.img\n  - imgs/z.img\n')).toBe(`${file}:4:5: image 'imgs/z.img' does not exist`);
  });

  it('refuses the same file named twice: by overlapping globs, and by another name (a hard link)', () => {
    expect(problem('recipe: fix.gfs.ts\nimages:\n  - imgs/*.img\n  - path: imgs/b.img\n    format: raw\n')).toBe(
      `${file}:4:11: 'imgs/b.img' is the same file as 'imgs/b.img' (line 3): an image may appear once in a job`,
    );
    expect(problem('recipe: fix.gfs.ts\nimages:\n  - imgs/a.img\n  - a-again.img\n')).toBe(
      `${file}:4:5: 'a-again.img' is the same file as 'imgs/a.img' (line 3): an image may appear once in a job`,
    );
  });

  it('reports bad values where they are', () => {
    expect(problem('recipe: fix.gfs.ts\nimages: [imgs/a.img]\nconcurrency: 0\n')).toMatch(new RegExp(`^${file}:3:14: concurrency`));
    expect(problem('recipe: fix.gfs.ts\nimages: [imgs/a.img]\non_failure: retry\n')).toBe(`${file}:3:13: on_failure must be continue or stop`);
    expect(problem('recipe: fix.gfs.ts\nimages:\n  - path: imgs/a.img\n    format: ext4\n')).toMatch(new RegExp(`^${file}:4:13: format 'ext4' is not one of`));
    expect(problem('recipe: fix.gfs.ts\nimages: [imgs/a.img]\nmount: auto\n')).toMatch(new RegExp(`^${file}:3:8: mount must be 'inspect', 'none' \\(the recipe mounts\\) or a list`));
    expect(problem('recipe: fix.gfs.ts\nimages: []\n')).toMatch(new RegExp(`^${file}:2:9: images must be a list`));
  });

  it('reads the README example job (its images aside)', () => {
    const example = join(import.meta.dirname, '..', '..', 'scripts-examples', 'batch', 'sysprep-fleet.yaml');
    // The example's images are not in the tree: the first missing one is what it reports, past every other check.
    expect(() => loadJob(example)).toThrow(/sysprep-fleet\.yaml:19:5: 'images\/web-\*\.qcow2' matches no file/);
  });

  it('derives the default concurrency from CPUs and free memory, and says why', () => {
    expect(defaultConcurrency(1280, 16 * 2 ** 30, 2)).toEqual({ n: 2, why: '2 at once (2 CPUs; 16.0 GiB free memory holds 9 appliances of 1280 MiB)' });
    expect(defaultConcurrency(1280, 3 * 2 ** 30, 8).n).toBe(1);
    expect(defaultConcurrency(1280, 2 ** 29, 8).n).toBe(1);
  });
});
