// guestsh's entry point: parse options, open a session, run the commands, map
// failures to exit codes (0 ok, 1 a command failed, 2 usage error).

import { ApplianceError, CancelledError, GuestfsError, UsageError } from './runtime/errors.js';
import { Session } from './runtime/session/session.js';
import { parseOptions, usage } from './repl/options.js';
import { parseCommand, runCommand } from './repl/run.js';

const VERSION = '0.1.0';

function oneLine(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

async function main(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    process.stderr.write(`guestsh: ${oneLine(e)}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (opts.version) {
    process.stdout.write(`guestsh ${VERSION} (libguestfs 1.48 appliance)\n`);
    return 0;
  }
  if (opts.commands.length === 0) {
    process.stderr.write(`guestsh: no commands given (the interactive shell is not built yet)\n${usage}\n`);
    return 2;
  }
  try {
    // Every command is checked before the appliance boots: a typo costs
    // milliseconds, not a launch.
    for (const words of opts.commands) parseCommand(words);
  } catch (e) {
    process.stderr.write(`guestsh: error: ${oneLine(e)}\n`);
    return 1;
  }
  const session = new Session();
  session.settings.verbose = opts.verbose;
  session.settings.trace = opts.trace;
  session.on('notice', (l) => process.stderr.write(`guestsh: ${l}\n`));
  session.on('trace', (l) => process.stderr.write(`guestsh: trace: ${l}\n`));
  if (opts.verbose) session.on('console', (l) => process.stderr.write(`${l}\n`));

  const stop = (signal: NodeJS.Signals): void => {
    void session.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (const d of opts.drives) await session.addDrive(d.path, { format: d.format, readonly: opts.readonly });
    for (const words of opts.commands) await runCommand(session, words, process.stdout);
    await session.shutdown();
    return 0;
  } catch (e) {
    process.stderr.write(`guestsh: error: ${oneLine(e)}\n`);
    // Bad options were answered with 2 above; anything failing from here on
    // is a failed command, as in guestfish.
    if (e instanceof UsageError || e instanceof GuestfsError || e instanceof ApplianceError || e instanceof CancelledError) {
      return 1;
    }
    throw e;
  } finally {
    await session.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
