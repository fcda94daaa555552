// `guestsh --remote …`'s entry: bin/guestsh.js comes here when the first
// word is --remote. A pipeline pays this start once per command, so the
// common form (`--remote[=PID] [--] CMD …`) is sent without loading the
// option table, the command table or the spec; anything else is the full
// command line's (src/cli.ts), as if this file were not here.

import { UsageError } from './runtime/errors.js';
import { failureLine, oneLine } from './repl/dialect.js';
import { leanRemoteRequest, remoteCommands } from './repl/remote.js';
import { Stop } from './repl/stop.js';

const request = leanRemoteRequest(process.argv.slice(2));
if (request === null) {
  await import('./cli.js');
} else {
  const stop = new Stop();
  try {
    process.exitCode = await remoteCommands(request, stop);
  } catch (e) {
    process.stderr.write(failureLine(oneLine(e)));
    process.exitCode = stop.exitCode(e instanceof UsageError ? e.exitCode : 1);
  }
}
