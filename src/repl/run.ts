// Resolving a command's words to an action and typed arguments without
// running it (used to check command-line commands before the appliance boots).

import { actionByName, spec, suggestActions } from '../spec/index.js';
import { parseCommandArgs } from '../commands/parse.js';
import type { ActionSpec } from '../spec/types.js';
import { UsageError } from '../runtime/errors.js';
import type { ArgValue, OptArgs } from '../spec/values.js';

let folded: Map<string, ActionSpec> | null = null;

/**
 * The action a shell command names: snake_case, kebab-case or alias, in any
 * letter case (guestfish's command table ignores case; mkswap-L has capitals).
 * Only actions guestfish offers (public, or debug).
 */
export function shellAction(name: string): ActionSpec | undefined {
  let a = actionByName(name);
  if (!a) {
    folded ??= new Map(
      spec.actions.flatMap((x) => [x.name, ...x.nonCAliases, ...x.fishAlias].map((n) => [n.replace(/-/g, '_').toLowerCase(), x] as const)),
    );
    a = folded.get(name.replace(/-/g, '_').toLowerCase());
  }
  if (!a || (a.visibility !== 'VPublic' && a.visibility !== 'VDebug')) return undefined;
  return a;
}

/** Resolves a command's words to an action and typed arguments, or a clear error. */
export function parseCommand(words: readonly string[]): { action: ActionSpec; args: ArgValue[]; optargs: OptArgs } {
  const [name, ...rest] = words;
  const action = shellAction(name!);
  if (!action) {
    const near = suggestActions(name!);
    throw new UsageError(`unknown command '${name}'${near.length ? `; did you mean ${near.join(', ')}?` : ''}`);
  }
  return { action, ...parseCommandArgs(action, rest) };
}
