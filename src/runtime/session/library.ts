// Library-side actions: the ones libguestfs implements in the library rather
// than in guestfsd (no procedure number). Each entry takes the already
// validated arguments in spec order. Actions not listed here answer a clear
// "not available in guestsh" error from the dispatcher.

import type { ArgValue, OptArgs, RetValue } from '../protocol/codec.js';
import { UsageError } from '../errors.js';
import type { Session, SessionSettings } from './session.js';

export type LibraryAction = (s: Session, args: readonly ArgValue[], opt: OptArgs) => Promise<RetValue> | RetValue;

const LIBGUESTFS_VERSION = { major: 1n, minor: 48n, release: 6n, extra: '' };

function setting<K extends keyof SessionSettings>(key: K): [LibraryAction, LibraryAction] {
  return [
    (s) => s.settings[key] as RetValue,
    (s, [v]) => {
      s.assertState(`set_${String(key)}`, 'config');
      (s.settings as unknown as Record<string, unknown>)[key] = v;
    },
  ];
}

function addDrive(s: Session, [filename]: readonly ArgValue[], opt: OptArgs): Promise<void> {
  const unsupported = ['iface', 'name', 'protocol', 'server', 'username', 'secret', 'cachemode', 'discard', 'copyonread', 'blocksize']
    .filter((k) => opt[k] !== undefined);
  if (unsupported.length) {
    throw new UsageError(`add_drive: optional argument ${unsupported.join(', ')} is not supported in guestsh (local image files only)`);
  }
  return s.addDrive(filename as string, {
    format: opt.format as string | undefined,
    readonly: opt.readonly as boolean | undefined,
    label: opt.label as string | undefined,
  });
}

// libguestfs's threshold: up to 2 MiB travels inside one message, larger
// content is streamed as an upload.
const INLINE_WRITE_MAX = 2 * 1024 * 1024;

function bytesOf(v: ArgValue): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v as Uint8Array);
}

async function writeFile(s: Session, path: string, content: Buffer, append: boolean): Promise<void> {
  if (content.length <= INLINE_WRITE_MAX) {
    await s.call(append ? 'internal_write_append' : 'internal_write', [path, content]);
    return;
  }
  const fileIn = { async *[Symbol.asyncIterator]() { yield content; } };
  if (append) {
    const offset = (await s.call('filesize', [path])) as bigint;
    await s.call('upload_offset', ['-', path, offset], {}, { fileIn });
  } else {
    await s.call('upload', ['-', path], {}, { fileIn });
  }
}

async function readFile(s: Session, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await s.call('download', [path, '-'], {}, { fileOut: (c) => void chunks.push(Buffer.from(c)) });
  return Buffer.concat(chunks);
}

async function listDirectory(s: Session, dir: string): Promise<string[]> {
  const chunks: Buffer[] = [];
  await s.call('ls0', [dir, '-'], {}, { fileOut: (c) => void chunks.push(Buffer.from(c)) });
  return Buffer.concat(chunks).toString('utf8').split('\0').filter(Boolean).sort();
}

const [getVerbose, setVerbose] = setting('verbose');
const [getTrace, setTrace] = setting('trace');
const [getMemsize, setMemsize] = setting('memsize');
const [getSmp, setSmp] = setting('smp');
const [getAutosync, setAutosync] = setting('autosync');
const [getNetwork, setNetwork] = setting('network');

export const libraryActions: Record<string, LibraryAction> = {
  add_drive: addDrive,
  add_drive_ro: (s, [f]) => s.addDrive(f as string, { readonly: true }),
  add_drive_scratch: (s, [size], opt) => s.addDriveScratch(size as bigint, { label: opt.label as string | undefined }),
  launch: (s) => s.launch(),
  write: (s, [path, content]) => writeFile(s, path as string, bytesOf(content!), false),
  write_append: (s, [path, content]) => writeFile(s, path as string, bytesOf(content!), true),
  read_file: (s, [path]) => readFile(s, path as string),
  ls: (s, [dir]) => listDirectory(s, dir as string),
  cat: async (s, [path]) => (await readFile(s, path as string)).toString('utf8'),
  shutdown: (s) => s.shutdown(),
  close: (s) => s.close(),
  version: () => ({ ...LIBGUESTFS_VERSION }),
  get_verbose: getVerbose,
  set_verbose: setVerbose,
  get_trace: getTrace,
  set_trace: setTrace,
  get_memsize: getMemsize,
  set_memsize: setMemsize,
  get_smp: getSmp,
  set_smp: setSmp,
  get_autosync: getAutosync,
  set_autosync: setAutosync,
  get_network: getNetwork,
  set_network: setNetwork,
  is_config: (s) => s.state === 'config',
  is_launching: (s) => s.state === 'launching',
  is_ready: (s) => s.state === 'ready',
  is_busy: () => false,
};
