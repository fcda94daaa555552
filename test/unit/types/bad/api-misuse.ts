// Compiled separately by test/api.test.ts and expected to FAIL, with an
// error on exactly the lines marked `expect-error:` whose message contains
// the marked text. It keeps the @ts-expect-error fixture from passing
// vacuously (e.g. if GuestfsApi degraded to `any`).

import type { GuestfsApi } from '../../../../src/spec/api.js';

declare const g: GuestfsApi;

export async function misuse(): Promise<void> {
  await g.mkfs('ext4', 42); // expect-error: Argument of type 'number' is not assignable to parameter of type 'string'
  await g.mkfs('ext4', '/dev/sda1', { lable: 'root' }); // expect-error: 'lable' does not exist in type 'MkfsOptions'
  const size: number = await g.filesize('/f'); // expect-error: Type 'bigint' is not assignable to type 'number'
  await g.mkfs('ext4', '/dev/sda1', {}, {}); // expect-error: Expected 2-3 arguments, but got 4
  await g.download('/f', '-', { fileIn: 'not a stream' }); // expect-error: Type 'string' is not assignable to type 'AsyncIterable<Uint8Array
  void size;
}
