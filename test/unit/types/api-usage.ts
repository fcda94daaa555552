// Compiled by test/api.test.ts with `tsc -p test/types/tsconfig.json`: the
// plain lines must compile, and each @ts-expect-error line must fail to
// (tsc reports an unused @ts-expect-error), so misuse is proven rejected.

import { createApi, type GuestfsApi, type GuestfsInternalApi, type LibraryImplementations, type MkfsOptions, type StatNS } from '../../../src/spec/api.js';

declare const g: GuestfsApi;
declare const internal: GuestfsInternalApi;

export async function correctUse(): Promise<void> {
  await g.addDrive('/tmp/disk.img', { format: 'raw', readonly: true, server: ['a:1'] });
  await g.launch();
  await g.mkfs('ext4', '/dev/sda1');
  await g.mkfs('ext4', '/dev/sda1', { label: 'root', blocksize: 4096 });
  const opts: MkfsOptions | undefined = undefined;
  await g.mkfs('ext4', '/dev/sda1', opts);
  await g.mount('/dev/sda1', '/');

  // Int64 inputs take bigint or a number; results are bigint.
  await g.truncateSize('/f', 10);
  await g.truncateSize('/f', 10n);
  await g.copyDeviceToDevice('/dev/sda', '/dev/sdb', { srcoffset: 512n, size: 1024 });
  const size: bigint = await g.filesize('/f');
  const asNumber: number = Number(await g.filesize('/f'));

  const st: StatNS = await g.statns('/');
  const mtime: bigint = st.st_mtime_sec;
  const lvs: string[] = (await g.lvsFull()).map((lv) => lv.lv_name);
  const mps: Record<string, string> = await g.inspectGetMountpoints('/dev/sda1');
  const bytes: Buffer = await g.readFile('/etc/hostname');
  const ok: boolean = await g.isFile('/etc/hostname');
  const append: string | null = await g.getAppend();
  const n: number = await g.pwrite('/f', 'text', 0);
  await g.pwrite('/f', new Uint8Array([1, 2]), 0n);
  await g.augDefvar('x', null);
  await g.available(['linuxxattrs']);
  const out: string = await g.command(['/bin/true']);
  void [size, asNumber, mtime, lvs, mps, bytes, ok, append, n, out];

  const { mount } = createApi({ call: async () => undefined });
  await mount('/dev/sda1', '/');

  // FileIn/FileOut actions take a transfer after the options.
  const signal = new AbortController().signal;
  await g.download('/etc/hostname', '-', { fileOut: (chunk: Buffer) => void chunk.length, signal });
  await g.upload('-', '/etc/motd', { fileIn: (async function* () { yield new Uint8Array([1]); })() });
  await g.tarOut('/etc', '-', { compress: 'gzip' }, { fileOut: async () => undefined });
  await g.tarOut('/etc', '-', undefined, { signal });

  // Internal actions are typed too, on their own interface.
  const listing: string = await internal.debug('sh', ['ls']);
  const groupState: number = await internal.internalFeatureAvailable('xfs');
  await internal.internalWrite('/f', 'content');
  void [listing, groupState];
}

// Library-side implementations are typed per action.
export const implementations: Partial<LibraryImplementations<{ name: string }>> = {
  is_config: () => true,
  disk_create: async (_host, filename: string, format: string, size: bigint | number, opts) => void [filename, format, size, opts.backingfile],
  ls: async (host, directory) => [host.name, directory],
};

export async function misuse(): Promise<void> {
  // @ts-expect-error a number where a string (Device) is expected
  await g.mkfs('ext4', 1);
  // @ts-expect-error the device argument is missing
  await g.mkfs('ext4');
  // @ts-expect-error one positional argument too many
  await g.mount('/dev/sda1', '/', '/extra');
  // @ts-expect-error mount has no optional arguments
  await g.mount('/dev/sda1', '/', {});
  // @ts-expect-error misspelt optional argument name
  await g.mkfs('ext4', '/dev/sda1', { lable: 'root' });
  // @ts-expect-error optional argument of the wrong type
  await g.mkfs('ext4', '/dev/sda1', { blocksize: '4096' });
  // @ts-expect-error an Int64 result is a bigint, not a number
  const size: number = await g.filesize('/f');
  // @ts-expect-error 64-bit struct fields are bigint too
  const mtime: number = (await g.statns('/')).st_mtime_sec;
  // @ts-expect-error Int arguments do not take bigint
  await g.pread('/f', 10n, 0);
  // @ts-expect-error a StringList argument needs an array
  await g.available('linuxxattrs');
  // @ts-expect-error RConstOptString may be null
  const append: string = await g.getAppend();
  // @ts-expect-error OptString takes null, not undefined
  await g.augDefvar('x', undefined);
  // @ts-expect-error a RErr action returns nothing usable
  const nothing: string = await g.sync();
  // @ts-expect-error internal actions have no method
  await g.internalAutosync();
  // @ts-expect-error no such action
  await g.mkfsOpts('ext4', '/dev/sda1');
  // @ts-expect-error a C pointer cannot be passed from JavaScript
  await g.addLibvirtDom({});
  // @ts-expect-error an action without FileIn/FileOut has no transfer
  await g.mkfs('ext4', '/dev/sda1', {}, { signal: new AbortController().signal });
  // @ts-expect-error the transfer comes after the options, not instead of them
  await g.tarOut('/etc', '-', { fileOut: () => undefined });
  // @ts-expect-error a FileOut receiver gets a Buffer, not a string
  await g.download('/f', '-', { fileOut: (chunk: string) => void chunk });
  // @ts-expect-error internal arguments are typed: one group name, not a list
  await internal.internalFeatureAvailable(['xfs']);
  // @ts-expect-error the public API has no internal actions
  await g.debug('sh', ['ls']);
  void [size, mtime, append, nothing];
}

export const wrongImplementations: Partial<LibraryImplementations<{ name: string }>> = {
  // @ts-expect-error is_config answers a boolean
  is_config: () => 'yes',
  // @ts-expect-error ls's directory is a string
  ls: async (_host, directory: number) => [String(directory)],
};
