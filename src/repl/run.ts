// Executes guestfish-style commands against a session and prints each result.

import { actionByName, suggestActions } from '../commands/spec/index.js';
import { parseCommandArgs } from '../commands/parse.js';
import { UsageError } from '../runtime/errors.js';
import type { Session } from '../runtime/session/session.js';
import { formatResult } from './format.js';

export async function runCommand(session: Session, words: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const [name, ...rest] = words;
  const action = actionByName(name!);
  if (!action) {
    const near = suggestActions(name!);
    throw new UsageError(`unknown command '${name}'${near.length ? `; did you mean ${near.join(', ')}?` : ''}`);
  }
  const { args, optargs } = parseCommandArgs(action, rest);
  const value = await session.call(action.name, args, optargs);
  const text = formatResult(action, value);
  if (text.length) out.write(text);
}
