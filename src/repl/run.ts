// Executes guestfish-style commands against a session and prints each result.

import { actionByName, suggestActions } from '../commands/spec/index.js';
import { parseCommandArgs } from '../commands/parse.js';
import type { ActionSpec } from '../commands/spec/types.js';
import { UsageError } from '../runtime/errors.js';
import type { ArgValue, OptArgs } from '../runtime/protocol/codec.js';
import type { Session } from '../runtime/session/session.js';
import { formatResult } from './format.js';

/** Resolves a command's words to an action and typed arguments, or a clear error. */
export function parseCommand(words: readonly string[]): { action: ActionSpec; args: ArgValue[]; optargs: OptArgs } {
  const [name, ...rest] = words;
  const action = actionByName(name!);
  if (!action) {
    const near = suggestActions(name!);
    throw new UsageError(`unknown command '${name}'${near.length ? `; did you mean ${near.join(', ')}?` : ''}`);
  }
  return { action, ...parseCommandArgs(action, rest) };
}

export async function runCommand(session: Session, words: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const { action, args, optargs } = parseCommand(words);
  const value = await session.call(action.name, args, optargs);
  const text = formatResult(action, value);
  if (text.length) out.write(text);
}
