import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { actionByName, publicActions, spec, structByName, suggestActions } from '../../src/spec/index.js';
import type { ActionSpec } from '../../src/spec/types.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = '/tmp/src/libguestfs-1.48.6';

function action(name: string): ActionSpec {
  const a = actionByName(name);
  if (!a) throw new Error(`no action ${name}`);
  return a;
}

describe('spec.json facts', () => {
  it('mount is procedure 1 taking (Mountable, PlainString)', () => {
    const a = action('mount');
    expect(a.procNr).toBe(1);
    expect(a.args).toEqual([
      { kind: 'String', name: 'mountable', sub: 'Mountable' },
      { kind: 'String', name: 'mountpoint', sub: 'PlainString' },
    ]);
    expect(a.optargs).toEqual([]);
    expect(a.ret).toEqual({ kind: 'RErr' });
  });

  it('add_drive is library-side, gained optargs later and has the add_drive_opts alias', () => {
    const a = action('add_drive');
    expect(a.procNr).toBeNull();
    expect(a.optargs.slice(0, 2)).toEqual([
      { kind: 'OBool', name: 'readonly' },
      { kind: 'OString', name: 'format' },
    ]);
    expect(a.onceHadNoOptargs).toBe(true);
    expect(a.nonCAliases).toEqual(['add_drive_opts']);
    expect(a.fishAlias).toContain('add');
    expect(a.camelName).toBe('AddDrive');
  });

  it('upload sends a FileIn and download receives a FileOut, both with progress', () => {
    const up = action('upload');
    const down = action('download');
    expect(up.args.map((x) => 'sub' in x && x.sub)).toEqual(['FileIn', 'Dev_or_Path']);
    expect(down.args.map((x) => 'sub' in x && x.sub)).toEqual(['Dev_or_Path', 'FileOut']);
    expect(up.progress && up.cancellable && down.progress && down.cancellable).toBe(true);
  });

  it('stat is a deprecated library-side wrapper over the statns daemon call', () => {
    expect(action('stat')).toMatchObject({ procNr: null, deprecatedBy: { replacedBy: 'statns' }, ret: { kind: 'RStruct', struct: 'stat' } });
    expect(action('statns')).toMatchObject({ procNr: 421, deprecatedBy: null, ret: { kind: 'RStruct', struct: 'statns' } });
  });

  it('statns has 22 FInt64 fields from st_dev to st_spare6', () => {
    const s = structByName('statns');
    expect(s.camelName).toBe('StatNS');
    expect(s.fields).toHaveLength(22);
    expect(s.fields.every((f) => f.type === 'FInt64')).toBe(true);
    expect(s.fields[0]!.name).toBe('st_dev');
    expect(s.fields.map((f) => f.name)).toContain('st_mtime_nsec');
    expect(s.fields[21]!.name).toBe('st_spare6');
  });

  it('lvm_pv starts with a string name and a UUID', () => {
    expect(structByName('lvm_pv').fields.slice(0, 2)).toEqual([
      { name: 'pv_name', type: 'FString' },
      { name: 'pv_uuid', type: 'FUUID' },
    ]);
  });

  it('keeps explicit camel names and derives the others', () => {
    expect(action('ntfsresize').camelName).toBe('NTFSResizeOpts');
    expect(action('mount_9p').camelName).toBe('Mount9P');
    expect(action('set_verbose').camelName).toBe('SetVerbose');
  });

  it('records fish output formats, pointer args and hidden actions', () => {
    expect(action('umask').fishOutput).toBe('octal');
    expect(action('c_pointer').fishOutput).toBe('hex');
    expect(action('add_libvirt_dom').args).toEqual([{ kind: 'Pointer', name: 'dom', ctype: 'virDomainPtr' }]);
    expect(action('internal_autosync').visibility).toBe('VInternal');
    expect(action('debug').visibility).toBe('VDebug');
    expect(action('internal_test').visibility).toBe('VBindTest');
  });

  it('has the protocol constants of guestfs_protocol.x', () => {
    expect(spec.protocol).toEqual({
      program: 0x2000f5f5,
      version: 4,
      launchFlag: 0xf5f55ff5,
      cancelFlag: 0xffffeeee,
      progressFlag: 0xffff5555,
      messageMax: 4194304,
      maxChunkSize: 8192,
      errorLen: 65536,
      maxProcNr: 510,
    });
  });

  const publicCount = publicActions().length;
  it(`has ${publicCount} public actions (expected 550..620)`, () => {
    expect(publicCount).toBeGreaterThanOrEqual(550);
    expect(publicCount).toBeLessThanOrEqual(620);
    expect(publicActions().every((a) => a.visibility === 'VPublic' || a.visibility === 'VPublicNoFish')).toBe(true);
  });

  it('has unique, sorted action and struct names', () => {
    const names = spec.actions.map((a) => a.name);
    expect(new Set(names).size).toBe(names.length);
    expect([...names].sort()).toEqual(names);
    const structs = spec.structs.map((s) => s.name);
    expect(new Set(structs).size).toBe(structs.length);
    expect([...structs].sort()).toEqual(structs);
  });

  it('gives every daemon action a unique procedure number up to maxProcNr', () => {
    const nrs = spec.actions.flatMap((a) => (a.procNr === null ? [] : [a.procNr]));
    expect(nrs.length).toBeGreaterThan(400);
    expect(new Set(nrs).size).toBe(nrs.length);
    expect(Math.max(...nrs)).toBe(spec.protocol.maxProcNr);
    expect(Math.min(...nrs)).toBe(1);
  });

  it('only returns structs that exist', () => {
    const known = new Set(spec.structs.map((s) => s.name));
    for (const a of spec.actions) {
      if (a.ret.kind === 'RStruct' || a.ret.kind === 'RStructList') expect(known, a.name).toContain(a.ret.struct);
    }
  });

  it('lists in each optgroup exactly the daemon actions naming it', () => {
    for (const [group, names] of Object.entries(spec.optgroups)) {
      for (const n of names) expect(action(n)).toMatchObject({ optional: group, procNr: expect.any(Number) });
    }
    const listed = Object.values(spec.optgroups).flat().length;
    expect(listed).toBe(spec.actions.filter((a) => a.optional !== null && a.procNr !== null).length);
    expect(spec.optgroups['linuxxattrs']).toContain('getxattrs');
    expect(spec.optgroups['augeas']).toEqual([]);
  });

  it('contains no prose: no string longer than 80 characters', () => {
    const long: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') { if (v.length > 80) long.push(v); }
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(spec);
    expect(long).toEqual([]);
  });
});

describe('lookup helpers', () => {
  it('accepts snake_case, kebab-case, generator aliases and fish aliases', () => {
    const a = action('add_drive');
    expect(actionByName('add-drive')).toBe(a);
    expect(actionByName('add_drive_opts')).toBe(a);
    expect(actionByName('add-drive-opts')).toBe(a);
    expect(actionByName('add')).toBe(a);
    expect(actionByName('run')).toBe(action('launch'));
    expect(actionByName('no-such-command')).toBeUndefined();
  });

  it('suggests near shell commands', () => {
    expect(suggestActions('mout')).toContain('mount');
    expect(suggestActions('list-filesystem')).toContain('list-filesystems');
    expect(suggestActions('zzzzzzzzzz')).toEqual([]);
  });

  it('throws on an unknown struct', () => {
    expect(() => structByName('no_such_struct')).toThrow(/no struct/);
  });
});

describe('regeneration', () => {
  const haveSource = existsSync(join(SRC, 'generator', 'actions.ml'));
  if (!haveSource) {
    console.log(`skipping the regeneration check: ${SRC} is missing (mkdir -p /tmp/src && cd /tmp/src && apt-get source libguestfs)`);
  }
  it.skipIf(!haveSource)('scripts/spec-from-source.ts reproduces spec.json byte for byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-test-'));
    try {
      const out = join(dir, 'spec.json');
      const summary = execFileSync(join(root, 'node_modules', '.bin', 'tsx'), [join(root, 'scripts', 'spec-from-source.ts'), SRC, '--out', out], { encoding: 'utf8' });
      console.log(summary.trim());
      expect(summary).toMatch(/^spec: \d+ actions \(\d+ public, \d+ daemon\), \d+ structs$/m);
      expect(readFileSync(out).equals(readFileSync(join(root, 'src', 'spec', 'spec.json')))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
