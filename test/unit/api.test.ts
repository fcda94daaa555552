import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { apiMethods, createApi, createInternalApi, internalApiMethods } from '../../src/spec/api.js';
import { actionByName, publicActions, spec } from '../../src/spec/index.js';
import type { ArgValue, CallTransfer, OptArgs } from '../../src/spec/values.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const generatedPath = join(root, 'src', 'spec', 'api.generated.ts');
const run = promisify(execFile);

/** tsc's exit code and output for a project; a failing compile is a result here, not an exception. */
async function tsc(project: string): Promise<{ code: number; output: string }> {
  const bin = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    const { stdout } = await run(process.execPath, [bin, '--noEmit', '-p', project], { cwd: root });
    return { code: 0, output: stdout };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('api.generated.ts', () => {
  it('is what scripts/gen-api.ts writes from the committed spec', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-api-'));
    try {
      const out = join(dir, 'api.generated.ts');
      await run(join(root, 'node_modules', '.bin', 'tsx'), [join(root, 'scripts', 'gen-api.ts'), '--out', out], { cwd: root });
      expect(readFileSync(out).equals(readFileSync(generatedPath)), 'stale: run npm run gen').toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has exactly one method per public action, mapped back to it', () => {
    const publicNames = publicActions().map((a) => a.name).sort();
    const mapped = Object.values(apiMethods).sort();
    expect(mapped).toEqual(publicNames);
    expect(new Set(mapped).size).toBe(mapped.length);
    for (const [method, name] of Object.entries(apiMethods)) {
      expect(method).toBe(name.replace(/_(.)/g, (_m, c: string) => c.toUpperCase()));
    }
  });

  it('names methods by dropping underscores and upper-casing what follows', () => {
    const a = apiMethods as Record<string, string>;
    expect(a.addDrive).toBe('add_drive');
    expect(a.isLv).toBe('is_lv');
    expect(a.mke2fsJ).toBe('mke2fs_J');
    expect(a.mke2fsJL).toBe('mke2fs_JL');
    expect(a.list9p).toBe('list_9p');
    expect(a.ntfs3gProbe).toBe('ntfs_3g_probe');
    expect(a.internalAutosync).toBeUndefined();
  });

  // The declarations themselves, read with the TypeScript parser: arity,
  // options types and deprecation tags against the spec.
  it('declares each method with the spec arity, options type and deprecation', () => {
    const file = ts.createSourceFile(generatedPath, readFileSync(generatedPath, 'utf8'), ts.ScriptTarget.ES2022, true);
    const interfaces = new Map<string, ts.InterfaceDeclaration>();
    file.forEachChild((n) => {
      if (ts.isInterfaceDeclaration(n)) interfaces.set(n.name.text, n);
    });
    const api = interfaces.get('GuestfsApi');
    expect(api).toBeDefined();
    const members = api!.members.filter(ts.isMethodSignature);
    expect(members.length).toBe(publicActions().length);

    let deprecated = 0;
    for (const m of members) {
      const method = (m.name as ts.Identifier).text;
      const action = actionByName((apiMethods as Record<string, string>)[method]!)!;
      const opts = action.optargs.length > 0 ? 1 : 0;
      // FileIn/FileOut actions take a transfer after everything else.
      const transfer = action.args.some((a) => a.kind === 'String' && (a.sub === 'FileIn' || a.sub === 'FileOut')) ? 1 : 0;
      expect(m.parameters.length, method).toBe(action.args.length + opts + transfer);
      if (transfer) {
        const last = m.parameters[m.parameters.length - 1]!;
        expect(last.questionToken, method).toBeDefined();
        expect((last.name as ts.Identifier).text, method).toBe('transfer');
        expect(last.type!.getText(), method).toBe('CallTransfer');
      }
      if (opts) {
        const last = m.parameters[action.args.length]!;
        expect(last.questionToken, method).toBeDefined();
        const optsType = last.type!.getText();
        expect(interfaces.get(optsType)?.members.map((p) => (p.name as ts.Identifier).text), method).toEqual(
          action.optargs.map((o) => o.name),
        );
      }
      const tags = ts.getJSDocTags(m).map((t) => t.tagName.text);
      expect(tags.includes('deprecated'), method).toBe(action.deprecatedBy !== null);
      expect(tags, method).toContain('since');
      if (action.deprecatedBy) deprecated++;
    }
    expect(deprecated).toBeGreaterThan(50);

    for (const s of spec.structs) {
      expect(interfaces.get(s.camelName)?.members.map((p) => (p.name as ts.Identifier).text), s.name).toEqual(
        s.fields.map((f) => f.name),
      );
    }
  });
});

describe('createApi', () => {
  type Recorded = { name: string; args: readonly ArgValue[]; optargs: OptArgs | undefined };

  function fake(): { calls: Recorded[]; g: ReturnType<typeof createApi> } {
    const calls: Recorded[] = [];
    const g = createApi({
      call: async (name, args, optargs) => {
        calls.push({ name, args, optargs });
        return `result of ${name}`;
      },
    });
    return { calls, g };
  }

  it('splits a trailing options object into optional arguments', async () => {
    const { calls, g } = fake();
    await g.mkfs('ext4', '/dev/sda1', { label: 'x' });
    await g.mkfs('ext4', '/dev/sda1');
    await g.mkfs('ext4', '/dev/sda1', undefined);
    await g.umountLocal({ retry: true });
    expect(calls).toEqual([
      { name: 'mkfs', args: ['ext4', '/dev/sda1'], optargs: { label: 'x' } },
      { name: 'mkfs', args: ['ext4', '/dev/sda1'], optargs: undefined },
      { name: 'mkfs', args: ['ext4', '/dev/sda1'], optargs: undefined },
      { name: 'umount_local', args: [], optargs: { retry: true } },
    ]);
  });

  it('passes arguments through unchanged when there is nothing to split', async () => {
    const { calls, g } = fake();
    const bytes = new Uint8Array([1, 2]);
    await g.mount('/dev/sda1', '/');
    await g.pwrite('/f', bytes, 0n);
    // Untyped callers: a non-object in the options slot, or too many
    // arguments, reach the caller as positional arguments for it to reject.
    const untyped = g as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    await untyped.mkfs!('ext4', '/dev/sda1', ['label']);
    await untyped.mkfs!('ext4', '/dev/sda1', {}, {});
    expect(calls).toEqual([
      { name: 'mount', args: ['/dev/sda1', '/'], optargs: undefined },
      { name: 'pwrite', args: ['/f', bytes, 0n], optargs: undefined },
      { name: 'mkfs', args: ['ext4', '/dev/sda1', ['label']], optargs: undefined },
      { name: 'mkfs', args: ['ext4', '/dev/sda1', {}, {}], optargs: undefined },
    ]);
  });

  it('routes every method to its own action and returns the caller result', async () => {
    const { calls, g } = fake();
    const methods = g as unknown as Record<string, () => Promise<unknown>>;
    for (const [method, name] of Object.entries(apiMethods)) {
      await expect(methods[method]!()).resolves.toBe(`result of ${name}`);
    }
    expect(calls.map((c) => c.name)).toEqual(Object.values(apiMethods));
    expect(Object.keys(g).sort()).toEqual(Object.keys(apiMethods).sort());
  });

  it('takes a transfer after the options on FileIn/FileOut actions, and only there', async () => {
    const seen: { name: string; args: readonly ArgValue[]; optargs: OptArgs | undefined; transfer: CallTransfer | undefined }[] = [];
    const g = createApi({
      call: async (name, args, optargs, transfer) => {
        seen.push({ name, args, optargs, transfer });
        return undefined;
      },
    });
    const fileOut = (): void => undefined;
    const signal = new AbortController().signal;
    await g.download('/etc/hostname', '-', { fileOut });
    await g.download('/etc/hostname', '/tmp/h');
    await g.tarOut('/etc', '-', { compress: 'gzip' }, { fileOut, signal });
    await g.tarOut('/etc', '-', undefined, { fileOut });
    await g.tarOut('/etc', '-', { compress: 'gzip' });
    // Without a FileIn/FileOut argument there is no transfer slot: a second object stays positional.
    const untyped = g as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    await untyped.mkfs!('ext4', '/dev/sda1', {}, { signal });
    await untyped.download!('/f', '-', {}, {});
    expect(seen).toEqual([
      { name: 'download', args: ['/etc/hostname', '-'], optargs: undefined, transfer: { fileOut } },
      { name: 'download', args: ['/etc/hostname', '/tmp/h'], optargs: undefined, transfer: undefined },
      { name: 'tar_out', args: ['/etc', '-'], optargs: { compress: 'gzip' }, transfer: { fileOut, signal } },
      { name: 'tar_out', args: ['/etc', '-'], optargs: undefined, transfer: { fileOut } },
      { name: 'tar_out', args: ['/etc', '-'], optargs: { compress: 'gzip' }, transfer: undefined },
      { name: 'mkfs', args: ['ext4', '/dev/sda1', {}, { signal }], optargs: undefined, transfer: undefined },
      { name: 'download', args: ['/f', '-', {}, {}], optargs: undefined, transfer: undefined },
    ]);
  });

  it('gives the internal actions an API of their own, apart from the public one', async () => {
    const names: string[] = [];
    const internal = createInternalApi({
      call: async (name) => {
        names.push(name);
        return 'ok';
      },
    });
    await internal.debug('sh', ['true']);
    await internal.internalAutosync();
    expect(names).toEqual(['debug', 'internal_autosync']);
    const internalNames = Object.values(internalApiMethods);
    expect(internalNames.sort()).toEqual(spec.actions.filter((a) => a.visibility === 'VInternal' || a.visibility === 'VDebug').map((a) => a.name).sort());
    const publicNames = new Set<string>(Object.values(apiMethods));
    expect(internalNames.filter((n) => publicNames.has(n))).toEqual([]);
  });

  it('gives methods that work detached from the object', async () => {
    const { calls, g } = fake();
    const { mount } = g;
    await mount('/dev/sda1', '/');
    expect(calls[0]!.name).toBe('mount');
    expect(Object.isFrozen(g)).toBe(true);
  });
});

describe('type-level tests', () => {
  it('compiles correct use and rejects every @ts-expect-error line', async () => {
    const { code, output } = await tsc('test/unit/types/tsconfig.json');
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('fails the misuse fixture on exactly the marked lines, naming the problem', async () => {
    const fixture = 'test/unit/types/bad/api-misuse.ts';
    const expected = new Map<number, string>();
    readFileSync(join(root, fixture), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const m = /\/\/ expect-error: (.*)$/.exec(line);
        if (m) expected.set(i + 1, m[1]!);
      });
    expect(expected.size).toBeGreaterThan(0);

    const { code, output } = await tsc('test/unit/types/bad/tsconfig.json');
    expect(code).not.toBe(0);
    const errors = [...output.matchAll(/^(.+?)\((\d+),\d+\): error TS\d+: (.*)$/gm)].map((m) => ({
      file: m[1]!,
      line: Number(m[2]),
      message: m[3]!,
    }));
    expect(errors.every((e) => e.file === fixture), output).toBe(true);
    expect(errors.map((e) => e.line).sort((a, b) => a - b)).toEqual([...expected.keys()]);
    for (const e of errors) expect(e.message).toContain(expected.get(e.line));
  });
});
