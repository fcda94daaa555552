// The typed guestfs API: types and the method tables come from
// api.generated.ts; this file turns a table into callable methods, so no
// action needs a hand-written body.

import type { ArgValue, CallTransfer, OptArgs, RetValue } from '../spec/values.js';
import { actionByName } from '../spec/index.js';
import { apiMethods, type GuestfsApi, type GuestfsInternalApi, internalApiMethods } from './api.generated.js';

export * from './api.generated.js';

/** Anything that runs an action by libguestfs name and validates its arguments, e.g. a Session. */
export interface ActionCaller {
  call(name: string, args: readonly ArgValue[], optargs?: OptArgs, transfer?: CallTransfer): Promise<RetValue>;
}

// Recipes are compiled without type checking, so the trailing values may be
// anything; only plain objects are taken as options or transfer. Anything
// else stays positional and the caller's argument-count check reports it.
function isOptions(v: unknown): v is OptArgs {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function methodsFor(caller: ActionCaller, table: Record<string, string>): Record<string, (...args: unknown[]) => Promise<RetValue>> {
  // The interfaces type the arguments for TypeScript callers; untyped
  // callers can pass anything, which caller.call rejects with a usage error.
  const api: Record<string, (...args: unknown[]) => Promise<RetValue>> = {};
  for (const [method, name] of Object.entries(table)) {
    const action = actionByName(name);
    if (!action) throw new Error(`api.generated.ts names ${name}, which spec.json lacks; run npm run gen`);
    const required = action.args.length;
    const hasOptions = action.optargs.length > 0;
    const hasTransfer = action.args.some((a) => a.kind === 'String' && (a.sub === 'FileIn' || a.sub === 'FileOut'));
    // What may follow the required arguments, in order.
    const slots = (hasOptions ? 1 : 0) + (hasTransfer ? 1 : 0);
    api[method] =
      slots === 0
        ? (...args) => caller.call(name, args as ArgValue[])
        : (...args) => {
            const trailing = args.slice(required);
            const split = trailing.length > 0 && trailing.length <= slots && trailing.every((v) => v === undefined || isOptions(v));
            if (!split) return caller.call(name, args as ArgValue[]);
            const positional = args.slice(0, required) as ArgValue[];
            const optargs = hasOptions ? (trailing[0] as OptArgs | undefined) : undefined;
            const transfer = hasTransfer ? (trailing[hasOptions ? 1 : 0] as CallTransfer | undefined) : undefined;
            return transfer === undefined ? caller.call(name, positional, optargs) : caller.call(name, positional, optargs, transfer);
          };
  }
  return Object.freeze(api);
}

/**
 * One method per public action, each forwarding to `caller.call` with the
 * libguestfs name, the positional arguments, the options object (when given)
 * as optional arguments, and, for FileIn/FileOut actions, the transfer.
 */
export function createApi(caller: ActionCaller): GuestfsApi {
  return methodsFor(caller, apiMethods) as unknown as GuestfsApi;
}

/** The same over libguestfs's internal and debug actions, for guestsh's runtime. */
export function createInternalApi(caller: ActionCaller): GuestfsInternalApi {
  return methodsFor(caller, internalApiMethods) as unknown as GuestfsInternalApi;
}
