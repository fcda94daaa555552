// The typed guestfs API: types and the method table come from
// api.generated.ts; this file turns the table into callable methods, so no
// action needs a hand-written body.

import type { ArgValue, OptArgs, RetValue } from '../spec/values.js';
import { actionByName } from '../spec/index.js';
import { apiMethods, type GuestfsApi } from './api.generated.js';

export * from './api.generated.js';

/** Anything that runs an action by libguestfs name and validates its arguments, e.g. a Session. */
export interface ActionCaller {
  call(name: string, args: readonly ArgValue[], optargs?: OptArgs): Promise<RetValue>;
}

// Recipes are compiled without type checking, so the trailing value may be
// anything; only a plain object is taken as options. Anything else stays
// positional and the caller's argument-count check reports it.
function isOptions(v: unknown): v is OptArgs {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/**
 * One method per public action, each forwarding to `caller.call` with the
 * libguestfs name, the positional arguments, and the options object (when
 * given) as optional arguments.
 */
export function createApi(caller: ActionCaller): GuestfsApi {
  // GuestfsApi types the arguments for TypeScript callers; untyped callers
  // can pass anything, which caller.call rejects with a usage error.
  const call = (name: string, args: unknown[], optargs?: OptArgs): Promise<RetValue> =>
    caller.call(name, args as ArgValue[], optargs);
  const api: Record<string, (...args: unknown[]) => Promise<RetValue>> = {};
  for (const [method, name] of Object.entries(apiMethods)) {
    const action = actionByName(name);
    if (!action) throw new Error(`api.generated.ts names ${name}, which spec.json lacks; run npm run gen`);
    const required = action.args.length;
    api[method] =
      action.optargs.length === 0
        ? (...args) => call(name, args)
        : (...args) => {
            const last = args[required];
            const split = args.length === required + 1 && (last === undefined || isOptions(last));
            if (!split) return call(name, args);
            return call(name, args.slice(0, required), last);
          };
  }
  return Object.freeze(api) as unknown as GuestfsApi;
}
