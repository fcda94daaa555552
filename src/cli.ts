// guestsh's entry point: parse options, open a session, run the commands
// (command line, -f script, stdin script or the interactive shell), and map
// the outcome to an exit code: 0 ok, 1 a command failed, 2 usage error.

import { Session } from './runtime/session/session.js';
import { parseOptions, usage, type Options } from './repl/options.js';
import { parseCommand } from './repl/run.js';
import { Shell } from './repl/shell.js';
import { StreamLineSource } from './repl/input.js';
import { addDrives, inspectBanner, inspectMount, KeyReader, listPrepared, mountAll, prepareDrives } from './repl/setup.js';
import { helpFor, listCommands } from './repl/help.js';
import { META_COMMANDS } from './repl/meta.js';

const VERSION = '0.1.0';

function oneLine(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function fail(msg: string): number {
  process.stderr.write(`guestsh: error: ${msg}\n`);
  return 1;
}

async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    process.stderr.write(`guestsh: ${oneLine(e)}\n`);
    return 2;
  }
  if (opts.help) {
    if (opts.helpCommand) {
      const text = helpFor(opts.helpCommand);
      if (text === null) return fail(`${opts.helpCommand}: command not known; guestsh -h lists the commands`);
      process.stdout.write(text);
      return 0;
    }
    process.stdout.write(opts.listCommands ? listCommands() : `${usage}\n`);
    return 0;
  }
  if (opts.version) {
    process.stdout.write(`guestsh ${VERSION} (libguestfs 1.48 appliance)\n`);
    return 0;
  }
  if (opts.listPrepared) {
    process.stdout.write(listPrepared());
    return 0;
  }
  const interactive = opts.commands.length === 0 && opts.file === null && Boolean(process.stdin.isTTY);
  if (opts.commands.length) {
    // Commands on the command line are checked before the appliance boots:
    // a typo costs milliseconds, not a launch. (-cmd ones may fail on purpose.)
    try {
      for (const words of opts.commands) {
        if (words[0]!.startsWith('-')) continue;
        if (META_COMMANDS[words[0]!.toLowerCase()]) continue;
        parseCommand(words);
      }
    } catch (e) {
      return fail(oneLine(e));
    }
  }
  const session = new Session();
  session.settings.verbose = opts.verbose;
  session.settings.trace = opts.trace;
  session.settings.autosync = opts.autosync;
  session.settings.network = opts.network;
  const wire = (s: Session): Session => {
    s.on('notice', (l) => process.stderr.write(`guestsh: ${l}\n`));
    s.on('trace', (l) => process.stderr.write(`guestsh: trace: ${l}\n`));
    if (opts.verbose) s.on('console', (l) => process.stderr.write(`${l}\n`));
    return s;
  };
  wire(session);
  const shell = new Shell(session, {
    json: opts.json,
    interactive,
    progress: opts.progressBars ?? (interactive && Boolean(process.stderr.isTTY)),
  }, (old) => {
    const s = wire(new Session());
    Object.assign(s.settings, old.settings);
    return s;
  });

  const stop = (signal: NodeJS.Signals): void => {
    void shell.session.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143));
  };
  // At the prompt Ctrl-C arrives as a key (it cancels the running call);
  // a SIGINT from elsewhere, SIGTERM or a closed terminal ends the session.
  if (!interactive) process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.once('SIGHUP', stop);
  try {
    let root: string | null = null;
    try {
      await addDrives(session, opts);
      const prepared = opts.drives.some((d) => d.kind === 'prepared');
      if (prepared || opts.mounts.length || opts.inspector) {
        await session.launch();
        if (opts.inspector) root = await inspectMount(session, opts, new KeyReader(opts));
        await prepareDrives(session, opts);
        await mountAll(session, opts.mounts, opts.readonly);
      }
    } catch (e) {
      return fail(oneLine(e));
    }
    let ok: boolean;
    if (opts.commands.length) {
      shell.stdinSource = new StreamLineSource(process.stdin, '*stdin*');
      ok = true;
      for (const [name, ...args] of opts.commands) {
        const continueOnError = name!.startsWith('-');
        const good = await shell.issue(continueOnError ? name!.slice(1) : name!, args, null, null);
        if (!good && !continueOnError) {
          ok = false;
          break;
        }
        if (shell.quit) break;
      }
    } else if (opts.file !== null || !interactive) {
      const src = opts.file !== null ? StreamLineSource.file(opts.file) : new StreamLineSource(process.stdin, '*stdin*');
      ok = await shell.runSource(src, true);
    } else {
      const { interactiveShell } = await import('./repl/interactive.js');
      const banner = root ? await inspectBanner(shell.session, root) : '';
      ok = await interactiveShell(shell, banner);
    }
    await shell.session.shutdown();
    return ok ? 0 : 1;
  } catch (e) {
    process.stderr.write(`guestsh: error: ${oneLine(e)}\n`);
    return 1;
  } finally {
    await shell.session.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
