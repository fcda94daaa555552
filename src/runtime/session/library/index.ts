// Library-side actions: the ones libguestfs implements in the library rather
// than in guestfsd (no procedure number), written here in TypeScript over
// daemon calls, qemu-img and host tar. Each entry is typed by the spec
// (LibraryImplementations) and takes the host, then the already validated
// arguments in spec order.
// The actions guestsh refuses outright answer "not supported in guestsh: …"
// with the reason from the action policy (../action-policy.ts).

import { actionByName } from '../../../spec/index.js';
import type { RetValue } from '../../../spec/values.js';
import { UsageError } from '../../errors.js';
import type { LibraryTable, SessionHost } from '../host.js';
import { checkOptionalGroup, deviceActions } from './devices.js';
import { diskActions } from './disks.js';
import { fileActions } from './files.js';
import { inspectActions } from './inspect.js';
import { mountLocalActions } from './mount-local.js';
import { propertyActions } from './properties.js';
import { notSupported as refusal } from './util.js';
import { notSupported } from '../action-policy.js';

export { checkOptionalGroup } from './devices.js';
export { notSupported };

/**
 * An implementation as the dispatcher calls it, by name: the spec's
 * arguments after the host, already checked against the spec by the codec.
 */
export type LibraryImplementation = (host: SessionHost, ...args: unknown[]) => Promise<RetValue> | RetValue;

const implemented: LibraryTable = {
  ...propertyActions,
  ...diskActions,
  ...fileActions,
  ...deviceActions,
  ...inspectActions,
  ...mountLocalActions,
  launch: (s) => s.launch(),
  // As in libguestfs, the handle is back in config afterwards, to add drives and launch again.
  shutdown: (s) => s.stopAppliance(),
  kill_subprocess: (s) => s.stopAppliance(),
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
