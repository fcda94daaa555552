// Handle properties (get_*/set_*). Those the engine reads live in
// Session.settings; the rest are kept per session here. A setter whose value
// guestsh cannot act on refuses with "not supported in guestsh" instead of
// storing something that would silently be ignored.

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../../cache.js';
import { UsageError } from '../../errors.js';
import { QEMU } from '../../qemu/accel.js';
import { type LibraryTable, type SessionHost, SessionSlot } from '../host.js';
import { notSupported } from './util.js';

interface Extra {
  program: string;
  identifier: string;
  backendSettings: string[];
  pgroup: boolean;
  recoveryProc: boolean;
  selinux: boolean;
  direct: boolean;
}

const extras = new SessionSlot<Extra>(() => ({
  program: 'guestsh',
  identifier: '',
  backendSettings: [],
  pgroup: false,
  recoveryProc: true,
  selinux: false,
  direct: false,
}));

function extra(s: SessionHost): Extra {
  return s.slot(extras);
}

/** libguestfs's lower bound for the appliance memory, in MiB. */
const MIN_MEMSIZE = 256;
const BACKEND = 'direct';

function truthy(name: string, v: string): boolean {
  const t = v.toLowerCase();
  if (['1', 'true', 't', 'yes', 'y', 'on'].includes(t)) return true;
  if (['0', 'false', 'f', 'no', 'n', 'off'].includes(t)) return false;
  throw new UsageError(`${name}=${v}: non-boolean value`);
}

function setBackend(action: string, name: string): void {
  // "appliance" is the pre-1.22 name of the direct backend.
  if (name === 'direct' || name === 'appliance') return;
  if (name === 'libvirt' || name.startsWith('libvirt:')) {
    throw notSupported(action, 'guestsh starts qemu itself (the direct backend); libvirt is not used');
  }
  throw new UsageError(`${action}: invalid backend: ${name} (guestsh has only the "direct" backend)`);
}

function getBackendSetting(s: SessionHost, name: string): string {
  for (const entry of extra(s).backendSettings) {
    if (entry === name) return '1';
    if (entry.startsWith(`${name}=`)) return entry.slice(name.length + 1);
  }
  throw new UsageError(`get_backend_setting: setting not found: ${name}`);
}

function clearBackendSetting(s: SessionHost, name: string): number {
  const e = extra(s);
  const before = e.backendSettings.length;
  e.backendSettings = e.backendSettings.filter((x) => x !== name && !x.startsWith(`${name}=`));
  return before - e.backendSettings.length;
}

/** Applies LIBGUESTFS_* variables the way libguestfs's parse_environment does. */
async function parseEnvironment(s: SessionHost, env: Record<string, string | undefined>): Promise<void> {
  const g = s.g;
  if (env.LIBGUESTFS_TRACE !== undefined) await g.setTrace(truthy('LIBGUESTFS_TRACE', env.LIBGUESTFS_TRACE));
  if (env.LIBGUESTFS_DEBUG !== undefined) await g.setVerbose(truthy('LIBGUESTFS_DEBUG', env.LIBGUESTFS_DEBUG));
  if (env.LIBGUESTFS_TMPDIR) await g.setTmpdir(env.LIBGUESTFS_TMPDIR);
  if (env.LIBGUESTFS_CACHEDIR) await g.setCachedir(env.LIBGUESTFS_CACHEDIR);
  if (env.LIBGUESTFS_PATH) await g.setPath(env.LIBGUESTFS_PATH);
  const hv = env.LIBGUESTFS_HV || env.LIBGUESTFS_QEMU;
  if (hv) await g.setHv(hv);
  if (env.LIBGUESTFS_APPEND !== undefined) await g.setAppend(env.LIBGUESTFS_APPEND);
  if (env.LIBGUESTFS_MEMSIZE) {
    const m = /^\s*([+-]?\d+)/.exec(env.LIBGUESTFS_MEMSIZE);
    if (!m) throw new UsageError('non-numeric value for LIBGUESTFS_MEMSIZE');
    await g.setMemsize(Number(m[1]));
  }
  const backend = env.LIBGUESTFS_BACKEND || env.LIBGUESTFS_ATTACH_METHOD;
  if (backend) await g.setBackend(backend);
  if (env.LIBGUESTFS_BACKEND_SETTINGS !== undefined) {
    await g.setBackendSettings(env.LIBGUESTFS_BACKEND_SETTINGS.split(':').filter(Boolean));
  }
}

function envFromList(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq > 0) env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return env;
}

type Getter = (s: SessionHost) => boolean;
type Setter = (s: SessionHost, v: boolean) => void;

const bool = (key: 'verbose' | 'trace' | 'autosync' | 'network'): [Getter, Setter] => [
  (s) => s.settings[key],
  (s, v) => {
    s.settings[key] = v;
  },
];

const extraBool = (key: 'pgroup' | 'recoveryProc' | 'selinux' | 'direct'): [Getter, Setter] => [
  (s) => extra(s)[key],
  (s, v) => {
    extra(s)[key] = v;
  },
];

const [getVerbose, setVerbose] = bool('verbose');
const [getTrace, setTrace] = bool('trace');
const [getAutosync, setAutosync] = bool('autosync');
const [getNetwork, setNetwork] = bool('network');
const [getPgroup, setPgroup] = extraBool('pgroup');
const [getRecoveryProc, setRecoveryProc] = extraBool('recoveryProc');
const [getSelinux, setSelinux] = extraBool('selinux');
const [getDirect, setDirect] = extraBool('direct');

function setHv(action: string): (s: SessionHost, hv: string | null) => void {
  return (_s, hv) => {
    if (hv === null || hv === QEMU) return;
    throw notSupported(action, `guestsh always runs ${QEMU} (found on $PATH); another hypervisor binary cannot be chosen`);
  };
}

export const propertyActions: LibraryTable = {
  get_verbose: getVerbose,
  set_verbose: setVerbose,
  get_trace: getTrace,
  set_trace: setTrace,
  get_autosync: getAutosync,
  set_autosync: setAutosync,
  get_network: getNetwork,
  set_network: setNetwork,
  get_pgroup: getPgroup,
  set_pgroup: setPgroup,
  get_recovery_proc: getRecoveryProc,
  set_recovery_proc: setRecoveryProc,
  get_selinux: getSelinux,
  set_selinux: setSelinux,
  get_direct: getDirect,
  set_direct: setDirect,

  get_memsize: (s) => s.settings.memsize,
  set_memsize: (s, m) => {
    if (m < MIN_MEMSIZE) throw new UsageError(`set_memsize: too small value for memsize (must be at least ${MIN_MEMSIZE})`);
    s.settings.memsize = m;
  },
  get_smp: (s) => s.settings.smp,
  set_smp: (s, v) => {
    if (v > 255) throw new UsageError(`set_smp: unsupported number of smp vcpus: ${v}`);
    if (v < 1) throw new UsageError(`set_smp: invalid smp parameter: ${v}`);
    s.settings.smp = v;
  },

  get_program: (s) => extra(s).program,
  set_program: (s, p) => {
    extra(s).program = p;
  },
  get_identifier: (s) => extra(s).identifier,
  set_identifier: (s, id) => {
    if (!/^[A-Za-z0-9_-]*$/.test(id)) {
      throw new UsageError('set_identifier: identifier must contain only alphanumeric characters, underscore or minus sign');
    }
    extra(s).identifier = id;
  },

  get_backend: () => BACKEND,
  set_backend: (_s, b) => setBackend('set_backend', b),
  get_attach_method: () => 'appliance',
  set_attach_method: (_s, b) => setBackend('set_attach_method', b),
  get_backend_settings: (s) => [...extra(s).backendSettings],
  set_backend_settings: (s, list) => {
    extra(s).backendSettings = [...list];
  },
  get_backend_setting: (s, name) => getBackendSetting(s, name),
  set_backend_setting: (s, name, val) => {
    clearBackendSetting(s, name);
    extra(s).backendSettings.push(`${name}=${val}`);
  },
  clear_backend_setting: (s, name) => clearBackendSetting(s, name),

  get_hv: () => QEMU,
  set_hv: setHv('set_hv'),
  get_qemu: () => QEMU,
  set_qemu: setHv('set_qemu'),
  get_path: () => join(cacheRoot(), 'appliance'),
  set_path: (_s, p) => {
    if (p === null) return;
    throw notSupported('set_path', 'guestsh builds its own appliance from the host\'s supermin recipe and caches it under $GUESTSH_CACHE; set that variable to move it');
  },
  get_append: () => null,
  set_append: (_s, a) => {
    if (a === null || a === '') return;
    throw notSupported('set_append', 'guestsh composes the appliance kernel command line itself; extra kernel parameters cannot be added');
  },
  get_tmpdir: () => tmpdir(),
  set_tmpdir: (_s, d) => {
    if (d === null) return;
    throw notSupported('set_tmpdir', 'guestsh keeps its per-session files under $TMPDIR; set that variable instead');
  },
  get_cachedir: () => cacheRoot(),
  set_cachedir: (_s, d) => {
    if (d === null) return;
    throw notSupported('set_cachedir', 'guestsh caches the appliance under $GUESTSH_CACHE (default ~/.cache/guestsh); set that variable instead');
  },
  get_sockdir: (s) => s.runDirectory ?? tmpdir(),
  get_pid: (s) => {
    const pid = s.qemuPid;
    if (pid === null) throw new UsageError('get_pid: no qemu subprocess: launch the appliance first');
    return pid;
  },

  parse_environment: (s) => parseEnvironment(s, process.env),
  parse_environment_list: (s, list) => parseEnvironment(s, envFromList(list)),
};
