// Resolving a command's words to an action and typed arguments without
// running it (used to check command-line commands before the appliance boots).

import { actionByName, suggestActions } from '../commands/spec/index.js';
import { parseCommandArgs } from '../commands/parse.js';
import type { ActionSpec } from '../commands/spec/types.js';
import { UsageError } from '../runtime/errors.js';
import type { ArgValue, OptArgs } from '../runtime/protocol/codec.js';

/** Resolves a command's words to an action and typed arguments, or a clear error. */
export function parseCommand(words: readonly string[]): { action: ActionSpec; args: ArgValue[]; optargs: OptArgs } {
  const [name, ...rest] = words;
  const action = actionByName(name!.toLowerCase());
  if (!action || (action.visibility !== 'VPublic' && action.visibility !== 'VDebug')) {
    const near = suggestActions(name!);
    throw new UsageError(`unknown command '${name}'${near.length ? `; did you mean ${near.join(', ')}?` : ''}`);
  }
  return { action, ...parseCommandArgs(action, rest) };
}
