// A recipe's declared params: read from its source without running it, and
// every --param checked against them before anything launches.
import { describe, expect, it } from 'vitest';
import { checkParams, declarations, declarationsInSource, describeParams } from '../../src/runtime/recipe/declarations.js';

const paramsInSource = (file: string, source: string) => declarationsInSource(file, source).params;
const declaredParams = async (r: { entry: string; std: string | null }) => (await declarations(r)).params;

const source = `export const params = {
  level: { description: 'how strict', values: ['basic', 'strict'], default: 'basic' },
  'max-tries': { description: 'attempts', type: 'number' },
  name: { description: 'who', required: true },
} as const;
export default async () => {};
`;

describe('declared params', () => {
  it('are read from the literal declaration, without running the recipe', () => {
    expect(paramsInSource('r.gfs.ts', source)).toEqual({
      level: { description: 'how strict', values: ['basic', 'strict'], default: 'basic' },
      'max-tries': { description: 'attempts', type: 'number' },
      name: { description: 'who', required: true },
    });
    expect(paramsInSource('r.gfs.ts', 'export default async () => {};\n')).toBeNull();
  });

  it('say whether the recipe only reads, as a literal', async () => {
    expect(declarationsInSource('r.gfs.ts', 'export const readOnly = true;\nexport default async () => {};\n').readOnly).toBe(true);
    expect(declarationsInSource('r.gfs.ts', source).readOnly).toBe(false);
    expect(() => declarationsInSource('r.gfs.ts', "export const readOnly = 'yes';\n")).toThrow(/^r\.gfs\.ts:1:14: 'readOnly' is not true or false/);
    expect((await declarations({ entry: '', std: 'inspect' })).readOnly).toBe(true);
    expect((await declarations({ entry: '', std: 'sysprep' })).readOnly).toBe(false);
  });

  it('must be written out literally, and the error points at what is not', () => {
    expect(() => paramsInSource('r.gfs.ts', 'const d = {};\nexport const params = d;\n')).toThrow(/^r\.gfs\.ts:2:14: 'params' is not an object literal/);
    expect(() => paramsInSource('r.gfs.ts', "export const params = {\n  a: { description: 'x', default: String(1) },\n};\n")).toThrow(/^r\.gfs\.ts:2:35: not a literal value/);
    expect(() => paramsInSource('r.gfs.ts', "export const params = { a: { desc: 'x' } };\n")).toThrow(/param 'a': unknown field 'desc'/);
    expect(() => paramsInSource('r.gfs.ts', 'export const params = { a: {} };\n')).toThrow(/param 'a': needs a description/);
  });

  it('refuse an unknown param with the nearest names, a wrong type or value, and a missing required one; fill in defaults', () => {
    const specs = paramsInSource('r.gfs.ts', source)!;
    expect(checkParams(specs, { name: 'me' }, 'r.gfs.ts')).toEqual({ name: 'me', level: 'basic' });
    expect(() => checkParams(specs, { name: 'me', levl: 'strict' }, 'r.gfs.ts')).toThrow(/r\.gfs\.ts has no param 'levl': did you mean level\? it takes level, max-tries, name/);
    expect(() => checkParams(specs, { name: 'me', level: 'lax' }, 'r.gfs.ts')).toThrow(/--param level=lax: not one of basic, strict/);
    expect(() => checkParams(specs, { name: 'me', 'max-tries': 'many' }, 'r.gfs.ts')).toThrow(/--param max-tries=many: not a number/);
    expect(() => checkParams(specs, {}, 'r.gfs.ts')).toThrow(/r\.gfs\.ts needs --param name=… \(who\)/);
    expect(describeParams(specs, 'r.gfs.ts')).toMatch(/--param level=basic\|strict +how strict \(default basic\)/);
  });

  it("come from the standard library's own modules for a ready recipe", async () => {
    const customize = await declaredParams({ entry: '', std: 'customize' });
    expect(Object.keys(customize!)).toContain('hostname');
    const sysprep = await declaredParams({ entry: '', std: 'sysprep' });
    expect(Object.keys(sysprep!)).toEqual(expect.arrayContaining(['operations', 'hostname', 'root-password']));
    expect(() => checkParams(customize!, { hostnme: 'x' }, 'guestsh/customize')).toThrow(/did you mean hostname\?/);
  });
});
