// --packer's lookup without a VM: which of an artifact's files are disk
// images (real qemu-img on real files), which manifest entry is the build's,
// and the option combinations refused before anything starts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/runtime/errors.js';
import { diskImageFormat, findPackerImages, PackerImageNotFound } from '../../src/runtime/recipe/packer.js';
import { parseArgs } from '../../src/repl/options.js';
import { checkPipelineOptions } from '../../src/repl/pipeline.js';

const dir = mkdtempSync(join(tmpdir(), 'guestsh-unit-packer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string): string => join(dir, name);

function rawWith(name: string, offset: number, bytes: number[]): string {
  const b = Buffer.alloc(1 << 20);
  Buffer.from(bytes).copy(b, offset);
  writeFileSync(at(name), b);
  return at(name);
}

describe('diskImageFormat', () => {
  it('takes qcow2 and raw files with a partition table or filesystem; refuses text, blank raw, missing files and FIFOs', async () => {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', at('a.qcow2'), '16M']);
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', at('fs.img'), '8M']);
    writeFileSync(at('a.sha256'), `${'0'.repeat(64)}\ta.qcow2\n`);
    execFileSync('mkfifo', [at('fifo')]);
    expect(await diskImageFormat(at('a.qcow2'))).toEqual({ format: 'qcow2' });
    expect(await diskImageFormat(rawWith('mbr.img', 510, [0x55, 0xaa]))).toEqual({ format: 'raw' });
    expect(await diskImageFormat(rawWith('gpt.img', 512, [...Buffer.from('EFI PART')]))).toEqual({ format: 'raw' });
    expect(await diskImageFormat(at('fs.img'))).toEqual({ format: 'raw' });
    const notDisk = { notDisk: 'is not a disk image (raw, with no partition table or filesystem signature)' };
    expect(await diskImageFormat(at('a.sha256'))).toEqual(notDisk);
    expect(await diskImageFormat(rawWith('blank.img', 0, []))).toEqual(notDisk);
    expect(await diskImageFormat(at('nothing-here'))).toEqual({ notDisk: 'does not exist' });
    expect(await diskImageFormat(at('fifo'))).toEqual({ notDisk: 'is a FIFO, not a disk image file or block device' });
  });
});

describe('findPackerImages', () => {
  const env = { PACKER_BUILD_NAME: 'img', PACKER_RUN_UUID: 'run-2' };
  const manifest = (name: string, builds: unknown[]): string => {
    writeFileSync(at(name), JSON.stringify({ builds }));
    return name;
  };

  it("takes the run's last entry for the build, its disk images in order, names relative to Packer's directory", async () => {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', at('b.qcow2'), '16M']);
    const m = manifest('m1.json', [
      { name: 'img', builder_type: 'null', packer_run_uuid: 'run-1', files: [{ name: 'old.qcow2' }] },
      { name: 'img', builder_type: 'null', packer_run_uuid: 'run-2', files: [{ name: 'a.qcow2' }] },
      { name: 'other', builder_type: 'qemu', packer_run_uuid: 'run-2', files: [{ name: 'fs.img' }] },
      { name: 'img', builder_type: 'null', packer_run_uuid: 'run-2', files: [{ name: 'a.qcow2' }, { name: 'a.sha256' }, { name: at('b.qcow2') }] },
    ]);
    const found = await findPackerImages({ manifest: m, env, cwd: dir });
    expect(found.images).toEqual([{ path: at('a.qcow2'), format: 'qcow2' }, { path: at('b.qcow2'), format: 'qcow2' }]);
    expect(found).toMatchObject({ manifest: at('m1.json'), build: 'img', runUuid: 'run-2', builderType: 'null' });
    expect(found.files.map((f) => [f.name, f.format ?? f.notDisk])).toEqual([
      ['a.qcow2', 'qcow2'],
      ['a.sha256', 'is not a disk image (raw, with no partition table or filesystem signature)'],
      [at('b.qcow2'), 'qcow2'],
    ]);
  });

  it('outside Packer (no PACKER_BUILD_NAME / PACKER_RUN_UUID) is a usage error, exit 2', async () => {
    const e = await findPackerImages({ env: { PACKER_BUILD_NAME: 'img' }, cwd: dir }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect(e).not.toBeInstanceOf(PackerImageNotFound);
    expect((e as UsageError).exitCode).toBe(2);
    expect((e as Error).message).toMatch(/PACKER_RUN_UUID not set/);
  });

  it('a file that is not a manifest is the manifest step (exit 5)', async () => {
    writeFileSync(at('not-json'), 'hello');
    const e = (await findPackerImages({ manifest: 'not-json', env, cwd: dir }).catch((x: unknown) => x)) as PackerImageNotFound;
    expect([e.step, e.exitCode]).toEqual(['manifest', 5]);
    expect(e.message).toMatch(/^run --packer: 'not-json' is not a Packer manifest/);
  });
});

describe('run options for pipelines', () => {
  const refused = (...argv: string[]): string => {
    try {
      checkPipelineOptions(parseArgs('run', [...argv, 'r.gfs.ts']));
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  it('refuses --packer with -a, --manifest without --packer, and the pipeline options with --watch', () => {
    expect(refused('--packer', '-a', 'x.img')).toMatch(/either --packer or -a/);
    expect(refused('--manifest', 'm.json', '-a', 'x.img')).toMatch(/--manifest is for --packer/);
    expect(refused('--watch', '-a', 'x.img', '--result', 'r.json')).toMatch(/--result does not go with --watch/);
    expect(refused('--watch', '-a', 'x.img', '--deadline', '5')).toMatch(/--deadline does not go with --watch/);
    expect(refused('--packer', '--manifest', 'm.json', '--result', 'r.json', '--deadline', '5', '--timeout', '60')).toBe('accepted');
    expect(() => parseArgs('run', ['--deadline', '0', 'r.gfs.ts'])).toThrow(/--deadline: '0' is not a positive number/);
  });
});
