// Library-side actions: the ones libguestfs implements in the library rather
// than in guestfsd (no procedure number), written here in TypeScript over
// daemon calls, qemu-img and host tar. Each entry is typed by the spec
// (LibraryImplementations) and takes the host, then the already validated
// arguments in spec order.
//
// `notSupported` lists the actions guestsh refuses outright, with the reason
// (the README's list is generated from it); `restricted` lists those that
// work but refuse some values. Both answer "not supported in guestsh: …".

import { actionByName } from '../../../spec/index.js';
import type { RetValue } from '../../../spec/values.js';
import { UsageError } from '../../errors.js';
import type { LibraryTable, SessionHost } from '../host.js';
import { checkOptionalGroup, deviceActions } from './devices.js';
import { diskActions } from './disks.js';
import { fileActions } from './files.js';
import { inspectActions } from './inspect.js';
import { propertyActions } from './properties.js';
import { notSupported as refusal } from './util.js';

export { checkOptionalGroup } from './devices.js';

/**
 * An implementation as the dispatcher calls it, by name: the spec's
 * arguments after the host, already checked against the spec by the codec.
 */
export type LibraryImplementation = (host: SessionHost, ...args: unknown[]) => Promise<RetValue> | RetValue;

const LIBVIRT = 'guestsh starts qemu itself and never talks to libvirt';

/** Public library-side actions guestsh refuses, with the reason. */
export const notSupported: Record<string, string> = {
  add_domain: `${LIBVIRT}; add the domain's disk images with add_drive`,
  add_libvirt_dom: `${LIBVIRT} (and a virDomainPtr cannot cross into TypeScript)`,
  get_libvirt_requested_credentials: `${LIBVIRT} (no libvirt authentication)`,
  get_libvirt_requested_credential_prompt: `${LIBVIRT} (no libvirt authentication)`,
  get_libvirt_requested_credential_challenge: `${LIBVIRT} (no libvirt authentication)`,
  get_libvirt_requested_credential_defresult: `${LIBVIRT} (no libvirt authentication)`,
  set_libvirt_requested_credential: `${LIBVIRT} (no libvirt authentication)`,
  set_libvirt_supported_credentials: `${LIBVIRT} (no libvirt authentication)`,
  c_pointer: 'there is no C guestfs_h handle behind a guestsh session',
  config: 'guestsh composes the qemu command line itself; arbitrary qemu parameters cannot be added',
  mount_local: 'guests are never mounted in the host kernel (no FUSE); use copy_out, tar_out or download',
  mount_local_run: 'guests are never mounted in the host kernel (no FUSE); use copy_out, tar_out or download',
  umount_local: 'guests are never mounted in the host kernel (no FUSE)',
  user_cancel: 'cancel a transfer through its AbortSignal (CallTransfer.signal) or Ctrl-C in the shell',
  add_drive_with_if: 'every drive is attached to one virtio-scsi controller; the interface cannot be chosen (use add_drive)',
  add_drive_ro_with_if: 'every drive is attached to one virtio-scsi controller; the interface cannot be chosen (use add_drive_ro)',
};

/** Actions that work, but refuse some argument values with "not supported in guestsh". */
export const restricted: Record<string, string> = {
  add_drive: 'optional arguments protocol, server, username, secret (network drives), iface, name, blocksize, copyonread, discard, and cachemode other than writeback',
  add_drive_scratch: 'optional arguments name and blocksize',
  set_hv: 'any hypervisor other than qemu-system-x86_64 (null resets)',
  set_qemu: 'any hypervisor other than qemu-system-x86_64 (null resets)',
  set_path: 'any appliance path (guestsh builds and caches its own appliance; null resets)',
  set_append: 'extra kernel parameters (null or empty resets)',
  set_tmpdir: 'a directory other than $TMPDIR (null resets)',
  set_cachedir: 'a directory other than $GUESTSH_CACHE (null resets)',
  set_backend: 'libvirt backends (only "direct" exists)',
  set_attach_method: 'libvirt backends (only "direct"/"appliance" exist)',
};

const implemented: LibraryTable = {
  ...propertyActions,
  ...diskActions,
  ...fileActions,
  ...deviceActions,
  ...inspectActions,
  launch: (s) => s.launch(),
  shutdown: (s) => s.shutdown(),
  kill_subprocess: (s) => s.shutdown(),
  version: () => ({ major: 1n, minor: 48n, release: 6n, extra: '' }),
  is_config: (s) => s.state === 'config',
  is_launching: (s) => s.state === 'launching',
  is_ready: (s) => s.state === 'ready',
  is_busy: () => false,
};

// The one place the per-action types are let go of: the dispatcher looks
// implementations up by a name known only at run time.
const byName = implemented as Record<string, LibraryImplementation>;

for (const [name, reason] of Object.entries(notSupported)) {
  byName[name] = () => {
    throw refusal(name, reason);
  };
}

function wrap(name: string, impl: LibraryImplementation): LibraryImplementation {
  const spec = actionByName(name);
  if (!spec) throw new Error(`library implementation ${name} has no action in spec.json`);
  if (!spec.configOnly && !spec.optional) return impl;
  return async (s, ...args) => {
    if (spec.configOnly && s.state !== 'config') {
      throw new UsageError(`${name}: this can only be done before launch (the appliance is ${s.state})`);
    }
    await checkOptionalGroup(s, spec);
    return impl(s, ...args);
  };
}

export const libraryActions: Readonly<Record<string, LibraryImplementation>> = Object.fromEntries(
  Object.entries(byName).map(([name, impl]) => [name, wrap(name, impl)]),
);
