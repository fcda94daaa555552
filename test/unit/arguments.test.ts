// Argument formats libguestfs checks on the library side (GUIDs, lists of
// file names): the codec refuses them for every action the spec gives such an
// argument, with the message guestfish prints, and takes every valid form.
import { describe, expect, it } from 'vitest';
import { checkCommand } from '../../src/commands/table.js';
import { UsageError } from '../../src/runtime/errors.js';
import { encodeArgs } from '../../src/runtime/protocol/codec.js';
import { Session } from '../../src/runtime/session/session.js';
import { spec } from '../../src/spec/index.js';
import type { ActionSpec, ArgSpec } from '../../src/spec/types.js';
import type { ArgValue } from '../../src/spec/values.js';

/** A well-formed value of each kind, so only the argument under test can be wrong. */
function validValue(a: ArgSpec): ArgValue {
  switch (a.kind) {
    case 'Bool':
      return true;
    case 'Int':
      return 1;
    case 'Int64':
      return 1n;
    case 'OptString':
      return null;
    case 'BufferIn':
      return 'x';
    case 'StringList':
      return a.sub === 'Device' ? ['/dev/sda'] : ['name'];
    case 'String':
      return a.sub === 'GUID' ? '01234567-89AB-CDEF-0123-456789ABCDEF' : a.sub === 'Device' ? '/dev/sda' : '/x';
    case 'Pointer':
      throw new Error('no pointer arguments here');
  }
}

function argsWith(action: ActionSpec, index: number, value: ArgValue): ArgValue[] {
  return action.args.map((a, i) => (i === index ? value : validValue(a)));
}

/** Every (action, argument index) whose argument is of this kind and sub-kind. */
function argumentsOf(kind: string, sub: string): [ActionSpec, number][] {
  return spec.actions.flatMap((a) =>
    a.args.flatMap((x, i): [ActionSpec, number][] => (x.kind === kind && 'sub' in x && x.sub === sub ? [[a, i]] : [])),
  );
}

const GUID_ARGS = argumentsOf('String', 'GUID');
const FILENAME_LIST_ARGS = argumentsOf('StringList', 'Filename');

const MALFORMED_GUIDS = [
  'f',
  '',
  '00000000-0000-0000-0000-00000000000', // one short
  '00000000-0000-0000-0000-0000000000000', // one long
  '21EC20203AEA1069A2DD08002B30309D', // no dashes
  '21EC2020-3AEA-1069-A2DD08002B30309D-', // a dash moved
  '{21EC2020-3AEA-1069-A2DD-08002B30309D', // 37: one brace
  '(21EC2020-3AEA-1069-A2DD-08002B30309D)', // 38, not braces
  '{21EC2020-3AEA-1069-A2DD-08002B30309D}}',
  '21EC2020-3AEA-1069-A2DD-08002B3030_D', // not a letter or digit
  '21EC2020-3AEA-1069-A2DD-08002B3030\u00e9', // not ASCII
  ' 21EC2020-3AEA-1069-A2DD-08002B30309D',
];

const VALID_GUIDS = [
  '21EC2020-3AEA-1069-A2DD-08002B30309D',
  '21ec2020-3aea-1069-a2dd-08002b30309d', // any case
  '{21EC2020-3AEA-1069-A2DD-08002B30309D}', // one pair of braces
  'zzzzzzzz-ZZZZ-gggg-0000-qwertyuiopas', // letters, not only hex digits
];

describe('GUID arguments', () => {
  it('the spec has exactly the three GUID-taking actions', () => {
    expect(GUID_ARGS.map(([a, i]) => `${a.name}:${a.args[i]!.name}`).sort()).toEqual([
      'part_set_disk_guid:guid',
      'part_set_gpt_guid:guid',
      'part_set_gpt_type:guid',
    ]);
  });

  for (const [action, i] of GUID_ARGS) {
    const name = action.args[i]!.name;
    it(`${action.name} refuses every malformed GUID with guestfish's message`, () => {
      for (const bad of MALFORMED_GUIDS) {
        expect(() => encodeArgs(action, argsWith(action, i, bad)), JSON.stringify(bad)).toThrow(
          new UsageError(`${action.name}: ${name}: parameter is not a valid GUID`),
        );
      }
    });

    it(`${action.name} accepts every valid form and sends it unchanged`, () => {
      for (const good of VALID_GUIDS) {
        const { bytes } = encodeArgs(action, argsWith(action, i, good));
        expect(bytes.includes(Buffer.from(good)), good).toBe(true);
      }
    });
  }

  it('the command line refuses it before launch', () => {
    expect(() => checkCommand(['part-set-gpt-guid', '/dev/sda', '1', 'f'])).toThrow(
      new UsageError('part_set_gpt_guid: guid: parameter is not a valid GUID'),
    );
    expect(() => checkCommand(['part-set-gpt-guid', '/dev/sda', '1', VALID_GUIDS[0]!])).not.toThrow();
  });

  it('a call refuses it before the state check, as libguestfs does (no appliance needed)', async () => {
    const s = new Session({ env: {} });
    await expect(s.call('part_set_gpt_guid', ['/dev/sda', 1, 'f'])).rejects.toThrow(
      new UsageError('part_set_gpt_guid: guid: parameter is not a valid GUID'),
    );
    await s.close();
  });
});

describe('file-name list arguments', () => {
  it('the spec gives them to the list actions and their daemon halves', () => {
    expect(FILENAME_LIST_ARGS.map(([a]) => a.name).sort()).toEqual([
      'internal_lstatnslist',
      'internal_lxattrlist',
      'internal_readlinklist',
      'lstatlist',
      'lstatnslist',
      'lxattrlist',
      'readlinklist',
    ]);
  });

  for (const [action, i] of FILENAME_LIST_ARGS) {
    const name = action.args[i]!.name;
    it(`${action.name} refuses a name holding a slash, naming it`, () => {
      expect(() => encodeArgs(action, argsWith(action, i, ['ok', 'a/b', 'c/d']))).toThrow(
        new UsageError(`${action.name}: ${name}: 'a/b' is not a file name`),
      );
      expect(() => encodeArgs(action, argsWith(action, i, ['/']))).toThrow(new UsageError(`${action.name}: ${name}: '/' is not a file name`));
      expect(() => encodeArgs(action, argsWith(action, i, ['a', '..', '.', 'b c', '']))).not.toThrow();
    });
  }
});
