// Handle properties (get_*/set_*). Those the engine reads live in
// Session.settings; the rest are kept per session here. A setter whose value
// guestsh cannot act on refuses with "not supported in guestsh" instead of
// storing something that would silently be ignored.

import { realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../../cache.js';
import { UsageError } from '../../errors.js';
import { QEMU, qemuPath } from '../../qemu/accel.js';
import { type LibraryTable, type SessionHost, SessionSlot } from '../host.js';
import { notSupported } from './util.js';

interface Extra {
  program: string;
  identifier: string;
  pgroup: boolean;
  recoveryProc: boolean;
  selinux: boolean;
  direct: boolean;
  cachedir: string | null;
}

const extras = new SessionSlot<Extra>(() => ({
  program: 'guestsh',
  identifier: '',
  pgroup: false,
  recoveryProc: true,
  selinux: false,
  direct: false,
  cachedir: null,
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
  for (const entry of s.settings.backendSettings) {
    if (entry === name) return '1';
    if (entry.startsWith(`${name}=`)) return entry.slice(name.length + 1);
  }
  throw new UsageError(`get_backend_setting: setting not found: ${name}`);
}

// The list is replaced, never changed in place: a shell's next session starts
// from a copy of this one's settings.
function clearBackendSetting(s: SessionHost, name: string): number {
  const before = s.settings.backendSettings;
  s.settings.backendSettings = before.filter((x) => x !== name && !x.startsWith(`${name}=`));
  return before.length - s.settings.backendSettings.length;
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

/** The same file, however named (a symlink, a relative path). */
function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** What get_hv answers: the qemu $PATH finds, as libguestfs answers its configured path. */
function hvPath(): string {
  return qemuPath() ?? QEMU;
}

function setHv(action: string): (s: SessionHost, hv: string | null) => void {
  return (_s, hv) => {
    if (hv === null || hv === QEMU || sameFile(hv, hvPath())) return;
    throw notSupported(action, `guestsh always runs the ${QEMU} found on $PATH (${hvPath()}); another hypervisor binary cannot be chosen`);
  };
}

function setMemsize(s: SessionHost, m: number): void {
  if (m < MIN_MEMSIZE) throw new UsageError(`set_memsize: too small value for memsize (must be at least ${MIN_MEMSIZE})`);
  s.settings.memsize = m;
}

function setPath(_s: SessionHost, p: string | null): void {
  if (p === null) return;
  throw notSupported('set_path', 'guestsh builds its own appliance from the host\'s supermin recipe and caches it under $GUESTSH_CACHE; set that variable to move it');
}

function setAppend(_s: SessionHost, a: string | null): void {
  if (a === null || a === '') return;
  throw notSupported('set_append', 'guestsh composes the appliance kernel command line itself; extra kernel parameters cannot be added');
}

/** libguestfs's rule for both directories: made absolute (realpath), and it must be a directory. */
function directory(action: string, d: string): string {
  let real: string;
  try {
    real = realpathSync(d);
  } catch (e) {
    throw new UsageError(`${action}: ${d}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}: the directory must exist`);
  }
  if (!statSync(real).isDirectory()) throw new UsageError(`${action}: '${d}' is not a directory`);
  return real;
}

function setTmpdir(s: SessionHost, d: string | null): void {
  s.settings.tmpdir = d === null ? null : directory('set_tmpdir', d);
}

// Stored and reported only: the appliance is shared between sessions,
// keyed by its inputs under $GUESTSH_CACHE, and a directory of its own per
// handle would mean a build per directory (libguestfs's tests give every
// test tree one).
function setCachedir(s: SessionHost, d: string | null): void {
  extra(s).cachedir = d === null ? null : directory('set_cachedir', d);
}

function setBackendSettings(s: SessionHost, list: readonly string[]): void {
  s.settings.backendSettings = [...list];
}

/**
 * Applies the LIBGUESTFS_* variables in libguestfs's order and with its
 * rules (which are set, which must be non-empty, how each is parsed).
 * `refused` hears each variable whose value fails: parse_environment throws
 * (stopping there, as libguestfs does); a new session notices and goes on
 * with the rest, since libguestfs creates the handle anyway and guestsh
 * refuses values (LIBGUESTFS_PATH, LIBGUESTFS_HV, …) libguestfs would take.
 */
export function applyEnvironment(s: SessionHost, env: Readonly<Record<string, string | undefined>>, refused: (variable: string, e: Error) => void): void {
  const nonEmpty = (name: string): string | undefined => (env[name] ? env[name] : undefined);
  const apply = (variable: string, value: string | undefined, set: (v: string) => void): void => {
    if (value === undefined) return;
    try {
      set(value);
    } catch (e) {
      refused(variable, e as Error);
    }
  };
  apply('LIBGUESTFS_TRACE', env.LIBGUESTFS_TRACE, (v) => setTrace(s, truthy('LIBGUESTFS_TRACE', v)));
  apply('LIBGUESTFS_DEBUG', env.LIBGUESTFS_DEBUG, (v) => setVerbose(s, truthy('LIBGUESTFS_DEBUG', v)));
  apply('LIBGUESTFS_TMPDIR', nonEmpty('LIBGUESTFS_TMPDIR'), (v) => setTmpdir(s, v));
  apply('LIBGUESTFS_CACHEDIR', nonEmpty('LIBGUESTFS_CACHEDIR'), (v) => setCachedir(s, v));
  apply('LIBGUESTFS_PATH', nonEmpty('LIBGUESTFS_PATH'), (v) => setPath(s, v));
  const hv = nonEmpty('LIBGUESTFS_HV') ? 'LIBGUESTFS_HV' : 'LIBGUESTFS_QEMU';
  apply(hv, nonEmpty(hv), (v) => setHv('set_hv')(s, v));
  apply('LIBGUESTFS_APPEND', env.LIBGUESTFS_APPEND, (v) => setAppend(s, v));
  apply('LIBGUESTFS_MEMSIZE', nonEmpty('LIBGUESTFS_MEMSIZE'), (v) => {
    const m = /^\s*([+-]?\d+)/.exec(v);
    if (!m) throw new UsageError('non-numeric value for LIBGUESTFS_MEMSIZE');
    setMemsize(s, Number(m[1]));
  });
  const backend = nonEmpty('LIBGUESTFS_BACKEND') ? 'LIBGUESTFS_BACKEND' : 'LIBGUESTFS_ATTACH_METHOD';
  apply(backend, nonEmpty(backend), (v) => setBackend('set_backend', v));
  // An empty value is an empty list; otherwise every colon separates (empty entries stay).
  apply('LIBGUESTFS_BACKEND_SETTINGS', env.LIBGUESTFS_BACKEND_SETTINGS, (v) => setBackendSettings(s, v === '' ? [] : v.split(':')));
}

function parseEnvironment(s: SessionHost, env: Readonly<Record<string, string | undefined>>): void {
  applyEnvironment(s, env, (_variable, e) => {
    throw e;
  });
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
  set_memsize: setMemsize,
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
  get_backend_settings: (s) => [...s.settings.backendSettings],
  set_backend_settings: setBackendSettings,
  get_backend_setting: (s, name) => getBackendSetting(s, name),
  set_backend_setting: (s, name, val) => {
    clearBackendSetting(s, name);
    s.settings.backendSettings = [...s.settings.backendSettings, `${name}=${val}`];
  },
  clear_backend_setting: (s, name) => clearBackendSetting(s, name),

  get_hv: hvPath,
  set_hv: setHv('set_hv'),
  get_qemu: hvPath,
  set_qemu: setHv('set_qemu'),
  get_path: () => join(cacheRoot(), 'appliance'),
  set_path: setPath,
  get_append: () => null,
  set_append: setAppend,
  get_tmpdir: (s) => s.settings.tmpdir ?? tmpdir(),
  set_tmpdir: setTmpdir,
  get_cachedir: (s) => extra(s).cachedir ?? cacheRoot(),
  set_cachedir: setCachedir,
  get_sockdir: (s) => s.runDirectory ?? tmpdir(),
  get_pid: (s) => {
    const pid = s.qemuPid;
    if (pid === null) throw new UsageError('get_pid: no qemu subprocess: launch the appliance first');
    return pid;
  },

  parse_environment: (s) => parseEnvironment(s, process.env),
  parse_environment_list: (s, list) => parseEnvironment(s, envFromList(list)),
};
