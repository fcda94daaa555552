// What guestsh decides about a libguestfs action beyond the spec, one row per
// action that needs one: refused everywhere, accepted with restrictions,
// refused inside recipes, or taking host paths the recipe path policy must
// confine. The dispatcher, the recipe policy, the README's tables and the
// call-coverage test all read this table, so a fact is written once.

import type { ActionSpec } from '../../spec/types.js';

/** A host-path argument of an action: its index, and whether it is read or written. */
export interface HostPathArg {
  index: number;
  mode: 'read' | 'write' | 'writeDir';
}

export interface ActionPolicy {
  /** Refused everywhere: "ACTION: not supported in guestsh: REASON". */
  unsupported?: string;
  /** Works, but refuses these values (the implementation checks them; this says which, for the docs). */
  restricted?: string;
  /** Refused inside recipes, and why. Config-only actions are refused there without a row. */
  recipe?: string;
  /** Host paths besides FileIn/FileOut arguments (which the spec marks), confined in recipes. */
  hostPaths?: readonly HostPathArg[];
}

const LIBVIRT = 'guestsh starts qemu itself and never talks to libvirt';
const NO_LIBVIRT_AUTH = `${LIBVIRT} (no libvirt authentication)`;
const ONE_CONTROLLER = 'every drive is attached to one virtio-scsi controller; the interface cannot be chosen';
const NULL_RESETS = '(null resets)';

// Why a recipe may not call an action.
const LAUNCH = 'it changes how the appliance is launched, which a recipe cannot do (the run launched it already)';
const HOST = 'it would run or read something on the host outside the recipe sandbox';
const LIFETIME = 'the run owns the session: it commits when the recipe returns and discards when it throws';

export const ACTION_POLICY: Readonly<Record<string, ActionPolicy>> = {
  add_domain: { unsupported: `${LIBVIRT}; add the domain's disk images with add_drive`, recipe: LAUNCH },
  add_libvirt_dom: { unsupported: `${LIBVIRT} (and a virDomainPtr cannot cross into TypeScript)`, recipe: LAUNCH },
  get_libvirt_requested_credentials: { unsupported: NO_LIBVIRT_AUTH },
  get_libvirt_requested_credential_prompt: { unsupported: NO_LIBVIRT_AUTH },
  get_libvirt_requested_credential_challenge: { unsupported: NO_LIBVIRT_AUTH },
  get_libvirt_requested_credential_defresult: { unsupported: NO_LIBVIRT_AUTH },
  set_libvirt_requested_credential: { unsupported: NO_LIBVIRT_AUTH },
  set_libvirt_supported_credentials: { unsupported: NO_LIBVIRT_AUTH },
  c_pointer: { unsupported: 'there is no C guestfs_h handle behind a guestsh session', recipe: HOST },
  config: { unsupported: 'guestsh composes the qemu command line itself; arbitrary qemu parameters cannot be added', recipe: LAUNCH },
  mount_local: { restricted: 'a non-root caller (the mount is made with mount(2))', recipe: HOST },
  mount_local_run: { recipe: HOST },
  umount_local: { recipe: HOST },
  user_cancel: { unsupported: 'cancel a transfer through its AbortSignal (CallTransfer.signal) or Ctrl-C in the shell', recipe: LIFETIME },
  add_drive_with_if: { unsupported: `${ONE_CONTROLLER} (use add_drive)` },
  add_drive_ro_with_if: { unsupported: `${ONE_CONTROLLER} (use add_drive_ro)` },

  add_drive: {
    restricted: 'optional arguments protocol, server, username, secret (network drives), iface other than scsi, name, blocksize other than 512 and 4096, copyonread, discard, and cachemode other than writeback',
    recipe: LAUNCH,
  },
  add_drive_scratch: { restricted: 'optional argument name, blocksize other than 512 and 4096', recipe: LAUNCH },
  set_hv: { restricted: `any hypervisor other than qemu-system-x86_64 ${NULL_RESETS}`, recipe: LAUNCH },
  set_qemu: { restricted: `any hypervisor other than qemu-system-x86_64 ${NULL_RESETS}`, recipe: LAUNCH },
  set_path: { restricted: `any appliance path (guestsh builds and caches its own appliance; null resets)`, recipe: LAUNCH },
  set_append: { restricted: 'extra kernel parameters (null or empty resets)', recipe: LAUNCH },
  set_tmpdir: { recipe: LAUNCH },
  set_cachedir: { recipe: LAUNCH },
  set_backend: { restricted: 'libvirt backends (only "direct" exists)', recipe: LAUNCH },
  set_attach_method: { restricted: 'libvirt backends (only "direct"/"appliance" exist)', recipe: LAUNCH },

  launch: { recipe: LIFETIME },
  shutdown: { recipe: LIFETIME },
  close: { recipe: LIFETIME },
  kill_subprocess: { recipe: LIFETIME },
  set_autosync: { recipe: LIFETIME },
  add_drive_ro: { recipe: LAUNCH },
  add_cdrom: { recipe: LAUNCH },
  remove_drive: { recipe: LAUNCH },
  set_backend_setting: { recipe: LAUNCH },
  set_backend_settings: { recipe: LAUNCH },
  clear_backend_setting: { recipe: LAUNCH },
  set_direct: { recipe: LAUNCH },
  set_memsize: { recipe: LAUNCH },
  set_smp: { recipe: LAUNCH },
  set_network: { recipe: LAUNCH },
  set_recovery_proc: { recipe: LAUNCH },
  set_pgroup: { recipe: LAUNCH },
  set_selinux: { recipe: LAUNCH },
  parse_environment: { recipe: `${HOST} (the host's environment variables)` },
  parse_environment_list: { recipe: LAUNCH },
  disk_create: { recipe: HOST },
  disk_format: { recipe: HOST },
  disk_virtual_size: { recipe: HOST },
  disk_has_backing_file: { recipe: HOST },

  copy_in: { hostPaths: [{ index: 0, mode: 'read' }] },
  copy_out: { hostPaths: [{ index: 1, mode: 'writeDir' }] },
};

/** The rows that have `key`, as name → value. */
function column<K extends keyof ActionPolicy>(key: K): Readonly<Record<string, NonNullable<ActionPolicy[K]>>> {
  const out: Record<string, NonNullable<ActionPolicy[K]>> = {};
  for (const [name, row] of Object.entries(ACTION_POLICY)) {
    const v = row[key];
    if (v !== undefined) out[name] = v as NonNullable<ActionPolicy[K]>;
  }
  return out;
}

/** Actions guestsh refuses outright, with the reason. */
export const notSupported = column('unsupported');
/** Why a recipe may not call a config-only action (those need no row). */
export const REFUSED_CONFIG_ONLY = LAUNCH;
/** Actions a recipe may not call (besides config-only ones), with the reason. */
export const recipeRefusals = column('recipe');
/** Host-path arguments beyond the spec's FileIn/FileOut. */
export const extraHostPaths = column('hostPaths');

// Which daemon calls count as writing to the disks (the shell asks at exit only
// after one). By default the return kind tells: a call done for its effect
// (RErr, no FileOut) writes, a call that answers reads. These differ: effects
// on the appliance's own state only, and answers that also change the disks.
// A call wrongly counted as a write costs a question; one wrongly counted as
// a read could cost one, so the second list errs on the side of writing.
const STATE_ONLY = new Set([
  'aug_close', 'aug_init', 'aug_load', 'blockdev_flushbufs', 'blockdev_rereadpt', 'blockdev_setbsz', 'blockdev_setra', 'blockdev_setro', 'blockdev_setrw',
  'cryptsetup_close', 'cryptsetup_open', 'drop_caches', 'hivex_close', 'hivex_open', 'inotify_close', 'inotify_init', 'inotify_rm_watch',
  'internal_autosync', 'internal_exit', 'journal_close', 'journal_open', 'journal_set_data_threshold', 'ldmtool_create_all', 'ldmtool_remove_all',
  'luks_close', 'luks_open', 'luks_open_ro', 'lvm_clear_filter', 'lvm_scan', 'lvm_set_filter', 'md_stop', 'mkmountpoint', 'rmmountpoint', 'modprobe',
  'mount', 'mount_9p', 'mount_loop', 'mount_options', 'mount_ro', 'mount_vfs', 'ping_daemon', 'remount', 'setcon', 'sleep', 'swapoff_device',
  'swapoff_file', 'swapoff_label', 'swapoff_uuid', 'sync', 'umount', 'umount_all', 'vg_activate', 'vg_activate_all', 'vgscan', 'yara_destroy', 'yara_load',
]);
const ANSWERS_AND_WRITES = new Set([
  'command', 'command_lines', 'sh', 'sh_lines', 'debug', 'fsck', 'xfs_repair', 'mkdtemp', 'mktemp', 'pwrite', 'pwrite_device',
  'aug_defnode', 'aug_rm', 'aug_setm', 'hivex_node_add_child',
]);

/** The exceptions to the return-kind rule, for the check that each names a daemon action. */
export const WRITE_RULE_EXCEPTIONS: { readonly stateOnly: ReadonlySet<string>; readonly answersAndWrites: ReadonlySet<string> } = {
  stateOnly: STATE_ONLY,
  answersAndWrites: ANSWERS_AND_WRITES,
};

/** May a call of this daemon action (successful or not) have written to the disks? */
export function writesDisks(a: ActionSpec): boolean {
  if (STATE_ONLY.has(a.name)) return false;
  if (ANSWERS_AND_WRITES.has(a.name)) return true;
  return a.ret.kind === 'RErr' && !a.args.some((x) => x.kind === 'String' && x.sub === 'FileOut');
}
