// `guestsh run --packer`: the images of the Packer build that runs guestsh
// from a shell-local post-processor. Packer (1.6.6) tells a post-processor
// its build's name and run UUID in the environment but not the artifact's
// files; the manifest post-processor writes them down. So the build's entry
// is the last one in the manifest with this run's UUID and this build's
// name, and its disk images are those of its files that probe as one (an
// artifact also lists checksum files, logs, OVF descriptors, …).

import { open, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { probeImage } from '../qemu/img.js';

/** The exit status of each way the build's images are not found (documented in the README). */
export const PACKER_EXIT = { manifest: 5, entry: 6, disk: 7 } as const;

/** The build's images could not be found: `step` says which part was missing. */
export class PackerImageNotFound extends UsageError {
  override name = 'PackerImageNotFound';
  override readonly exitCode: number;
  constructor(
    readonly step: keyof typeof PACKER_EXIT,
    message: string,
  ) {
    super(message);
    this.exitCode = PACKER_EXIT[step];
  }
}

/** One of the artifact's files, and what the probe made of it. */
export interface PackerFile {
  /** As the manifest names it (relative names are relative to Packer's working directory). */
  name: string;
  path: string;
  /** The image format, when the file is a disk image. */
  format?: string | undefined;
  /** Why it is not one. */
  notDisk?: string | undefined;
}

export interface PackerImages {
  manifest: string;
  build: string;
  runUuid: string;
  builderType: string;
  files: PackerFile[];
  /** The disk images among the files, in the manifest's order. */
  images: { path: string; format: string }[];
}

interface ManifestBuild {
  name?: unknown;
  builder_type?: unknown;
  packer_run_uuid?: unknown;
  files?: { name?: unknown }[] | null;
}

/**
 * Raw images have no header, so qemu-img calls any file raw: a raw file is
 * taken for a disk when its first sectors hold a partition table or a
 * filesystem, LUKS or LVM signature (byte offset, signature).
 */
const RAW_SIGNATURES: readonly [number, Uint8Array, string][] = [
  [510, Uint8Array.of(0x55, 0xaa), 'an MBR or boot sector'],
  [512, Buffer.from('EFI PART'), 'a GPT'],
  [1080, Uint8Array.of(0x53, 0xef), 'an ext2/3/4 filesystem'],
  [0, Buffer.from('XFSB'), 'an XFS filesystem'],
  [0, Uint8Array.of(0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe), 'a LUKS header'],
  [536, Buffer.from('LVM2 001'), 'an LVM physical volume'],
  [32769, Buffer.from('CD001'), 'an ISO 9660 filesystem'],
  [65600, Buffer.from('_BHRfS_M'), 'a Btrfs filesystem'],
];
const SNIFF_BYTES = Math.max(...RAW_SIGNATURES.map(([at, sig]) => at + sig.length));

async function rawSignature(path: string): Promise<string | null> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(head, 0, SNIFF_BYTES, 0);
    for (const [at, sig, what] of RAW_SIGNATURES) {
      if (at + sig.length <= bytesRead && head.subarray(at, at + sig.length).equals(sig)) return what;
    }
    return null;
  } finally {
    await fh.close();
  }
}

/** The file's image format if it is a disk image, else why it is not (no throw). */
export async function diskImageFormat(path: string): Promise<{ format: string } | { notDisk: string }> {
  let format: string;
  try {
    // The probe refuses what qemu would hang on; the run's own open applies the backing-file policy.
    ({ format } = await probeImage(path, undefined, 'any'));
  } catch (e) {
    return { notDisk: (e as Error).message.replace(/^disk image '[^']*' /, '') };
  }
  if (format !== 'raw') return { format };
  return (await rawSignature(path)) ? { format } : { notDisk: 'is not a disk image (raw, with no partition table or filesystem signature)' };
}

const quoteList = (names: string[], max = 5): string =>
  names.length === 0 ? 'none' : `${names.slice(0, max).map((n) => `'${n}'`).join(', ')}${names.length > max ? `, … (${names.length} in all)` : ''}`;

/**
 * Finds the images of the build Packer runs guestsh for. `env` is Packer's
 * (PACKER_BUILD_NAME, PACKER_RUN_UUID); relative names resolve against
 * `cwd`, Packer's working directory, as Packer wrote them.
 */
export async function findPackerImages(opts: { manifest?: string | undefined; env: NodeJS.ProcessEnv; cwd?: string }): Promise<PackerImages> {
  const cwd = opts.cwd ?? process.cwd();
  const build = opts.env.PACKER_BUILD_NAME;
  const runUuid = opts.env.PACKER_RUN_UUID;
  if (!build || !runUuid) {
    const missing = [!build && 'PACKER_BUILD_NAME', !runUuid && 'PACKER_RUN_UUID'].filter(Boolean).join(' and ');
    throw new UsageError(`run --packer: ${missing} not set: run it from a Packer shell-local post-processor, or give the image with -a IMAGE instead`);
  }
  const manifestName = opts.manifest ?? 'packer-manifest.json';
  const manifest = resolve(cwd, manifestName);
  const wanted = `build '${build}' of Packer run ${runUuid}`;
  const hint = 'put a "manifest" post-processor before guestsh in the same post-processors block';
  let text: string;
  try {
    text = await readFile(manifest, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as Error).message})`;
    throw new PackerImageNotFound('manifest', `run --packer: the Packer manifest '${manifestName}' ${why} (looked for the ${wanted}): ${hint}, or name it with --manifest PATH`);
  }
  let builds: ManifestBuild[];
  try {
    const parsed = JSON.parse(text) as { builds?: unknown };
    if (!Array.isArray(parsed.builds)) throw new Error('it has no "builds" list');
    builds = parsed.builds as ManifestBuild[];
  } catch (e) {
    throw new PackerImageNotFound('manifest', `run --packer: '${manifestName}' is not a Packer manifest (${(e as Error).message}); name the manifest post-processor's output with --manifest PATH`);
  }
  // A chain with several manifest post-processors adds an entry each: the last is the artifact as it is now.
  const entry = builds.filter((b) => b.name === build && b.packer_run_uuid === runUuid).at(-1);
  if (!entry) {
    const thisRun = builds.filter((b) => b.packer_run_uuid === runUuid).map((b) => String(b.name));
    throw new PackerImageNotFound(
      'entry',
      `run --packer: '${manifestName}' has no entry for the ${wanted} (this run's entries: ${quoteList(thisRun)}): ${hint}`,
    );
  }
  const files: PackerFile[] = [];
  for (const f of entry.files ?? []) {
    if (typeof f?.name !== 'string' || f.name === '') continue;
    const path = resolve(cwd, f.name);
    files.push({ name: f.name, path, ...(await diskImageFormat(path)) });
  }
  const images = files.flatMap((f) => (f.format ? [{ path: f.path, format: f.format }] : []));
  if (images.length === 0) {
    const seen = files.map((f) => `'${f.name}' ${f.notDisk}`);
    throw new PackerImageNotFound(
      'disk',
      `run --packer: the ${wanted} in '${manifestName}' lists no disk image (${seen.length ? seen.join('; ') : 'it lists no files'})`,
    );
  }
  return { manifest, build, runUuid, builderType: typeof entry.builder_type === 'string' ? entry.builder_type : '', files, images };
}
