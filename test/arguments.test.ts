// guestsh issue 21, against the real appliance and the built CLI: a malformed
// GUID fails every GUID-taking action (as in guestfish) and leaves the disk as
// it was, where before the daemon wrote zeroes or did nothing; the CLI's
// session takes LIBGUESTFS_BACKEND_SETTINGS and reports the resolved qemu.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../src/runtime/errors.js';
import { Session } from '../src/runtime/session/session.js';
import { spec } from '../src/spec/index.js';
import { guestsh, isolatedTmpdir } from './helpers.js';

const tmp = isolatedTmpdir();
const s = new Session();

const GPT_LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const PART_GUID = '01234567-89AB-CDEF-0123-456789ABCDEF';
const DISK_GUID = 'FEDCBA98-7654-3210-FEDC-BA9876543210';

/** What each GUID-taking action writes, read back; its arguments before the GUID. */
const GUID_ACTIONS: Record<string, { read: () => Promise<string>; before: (string | number)[] }> = {
  part_set_gpt_guid: { read: () => s.g.partGetGptGuid('/dev/sda', 1), before: ['/dev/sda', 1] },
  part_set_disk_guid: { read: () => s.g.partGetDiskGuid('/dev/sda'), before: ['/dev/sda'] },
  part_set_gpt_type: { read: () => s.g.partGetGptType('/dev/sda', 1), before: ['/dev/sda', 1] },
};

beforeAll(async () => {
  await s.addDriveScratch(64n * 1024n * 1024n);
  await s.launch();
  await s.g.partDisk('/dev/sda', 'gpt');
  await s.g.partSetGptGuid('/dev/sda', 1, PART_GUID);
  await s.g.partSetDiskGuid('/dev/sda', DISK_GUID);
});

afterAll(async () => {
  await s.close();
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

describe('GUID arguments on a GPT disk', () => {
  it('the table covers every GUID-taking action in the spec', () => {
    const inSpec = spec.actions.filter((a) => a.args.some((x) => x.kind === 'String' && x.sub === 'GUID')).map((a) => a.name);
    expect(Object.keys(GUID_ACTIONS).sort()).toEqual(inSpec.sort());
  });

  for (const [name, { read, before }] of Object.entries(GUID_ACTIONS)) {
    it(`${name} refuses malformed GUIDs and the disk keeps its value`, async () => {
      const was = await read();
      expect([PART_GUID, DISK_GUID, GPT_LINUX]).toContain(was);
      for (const bad of ['f', '', '00000000000000000000000000000000', '{01234567-89AB-CDEF-0123-456789ABCDEF']) {
        await expect(s.call(name, [...before, bad])).rejects.toThrow(new UsageError(`${name}: guid: parameter is not a valid GUID`));
        expect(await read()).toBe(was);
      }
    });
  }

  it('a GUID in braces, in lower case, is taken', async () => {
    await s.g.partSetGptGuid('/dev/sda', 1, `{${PART_GUID.toLowerCase()}}`);
    expect(await s.g.partGetGptGuid('/dev/sda', 1)).toBe(PART_GUID);
  });
});

describe('the CLI', () => {
  it('part-set-gpt-guid with a malformed GUID fails with guestfish\'s message', async () => {
    const r = await guestsh(['part-set-gpt-guid', '/dev/sda', '1', 'f']);
    expect(r.stderr).toBe('guestsh: error: part_set_gpt_guid: guid: parameter is not a valid GUID\n');
    expect(r.code).toBe(1);
  });

  it('LIBGUESTFS_BACKEND_SETTINGS=force_tcg: get-backend-settings prints it', async () => {
    const r = await guestsh(['get-backend-settings'], { ...process.env, LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' });
    expect(r).toEqual({ code: 0, stdout: 'force_tcg\n', stderr: '' });
  });

  it('LIBGUESTFS_DEBUG and LIBGUESTFS_TRACE hold without -v and -x; a refused variable is a one-line notice', async () => {
    const env = { ...process.env, LIBGUESTFS_DEBUG: '1', LIBGUESTFS_TRACE: '1', LIBGUESTFS_PATH: '/usr/lib/guestfs' };
    const r = await guestsh(['get-verbose', ':', 'get-trace'], env);
    expect(r.stdout).toBe('true\ntrue\n');
    // -x's trace (library-side calls are traced too, as in guestfish) and the notice, on a line of its own.
    expect(r.stderr).toMatch(/^guestsh: trace: get_verbose = 1$/m);
    expect(r.stderr).toMatch(/^guestsh: LIBGUESTFS_PATH ignored: set_path: not supported in guestsh: .*GUESTSH_CACHE[^\n]*$/m);
    expect(r.stderr.match(/LIBGUESTFS_PATH/g)).toHaveLength(1);
    expect(r.code).toBe(0);
  });

  it('get-hv and get-qemu print the resolved path of qemu-system-x86_64', async () => {
    const onPath = execFileSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).trim();
    const r = await guestsh(['get-hv', ':', 'get-qemu']);
    expect(r).toEqual({ code: 0, stdout: `${onPath}\n${onPath}\n`, stderr: '' });
  });
});
