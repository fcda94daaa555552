// guestsh's entry point: a verb (run, status, recover, init-recipe), or the
// shell: parse options, open the images, run the commands (command line, -f
// script, stdin script or the interactive shell), and map the outcome to an
// exit code: 0 ok, 1 a command failed, 2 usage error, 4 the images could not
// be opened (launched, mounted), 128 + N stopped by signal N (SIGINT,
// SIGTERM, SIGHUP: see repl/stop.ts); the README's table is the same for
// every verb.

import type { Session } from './runtime/session/session.js';
import { UsageError } from './runtime/errors.js';
import { checkCommandLine, helpFor, listCommands } from './commands/table.js';
import { parseOptions, usage, type Options } from './repl/options.js';
import type { Shell } from './repl/shell.js';
import { failureLine, oneLine, processDialect } from './repl/dialect.js';
import { listPrepared } from './repl/prepared.js';
import { runVerbIfAny } from './repl/verbs.js';
import { Stop } from './repl/stop.js';

// Before anything is acquired: a signal from here on is a clean stop.
const stop = new Stop();

const dialect = processDialect;
const PROGRAM = dialect;

function fail(msg: string, code = 1): number {
  process.stderr.write(failureLine(msg));
  return code;
}

async function main(argv: string[]): Promise<number> {
  let opts: Options;
  try {
    const verb = runVerbIfAny(argv, stop);
    if (verb) return await verb;
    opts = parseOptions(argv);
  } catch (e) {
    return stop.exitCode(fail(oneLine(e), e instanceof UsageError ? e.exitCode : 1));
  }
  if (opts.help) {
    if (opts.helpCommand === null) {
      process.stdout.write(opts.listCommands ? listCommands() : usage('shell'));
      return 0;
    }
    try {
      process.stdout.write(helpFor(opts.helpCommand));
      return 0;
    } catch (e) {
      return fail(oneLine(e));
    }
  }
  if (opts.version) {
    process.stdout.write(await (await import('./repl/about.js')).aboutText());
    return 0;
  }
  if (opts.listPrepared) {
    process.stdout.write(listPrepared());
    return 0;
  }
  try {
    if (opts.remote !== null) {
      const remote = await import('./repl/remote.js');
      return await remote.remoteCommands(remote.remoteRequest(opts), stop);
    }
    if (opts.listen) {
      const resident = await import('./repl/resident.js');
      // The foreground starts the session in a process of its own and returns once it listens.
      if (!resident.isResidentProcess()) return await resident.startResident(argv, opts, stop);
      resident.checkListenOptions(opts);
    }
  } catch (e) {
    return stop.exitCode(fail(oneLine(e), e instanceof UsageError ? e.exitCode : 1));
  }
  const interactive = !opts.listen && opts.commands.length === 0 && opts.file === null && Boolean(process.stdin.isTTY);
  // Commands on the command line are checked before the appliance boots:
  // a typo costs milliseconds, not a launch. (-cmd ones may fail on purpose.)
  try {
    checkCommandLine(opts.commands);
  } catch (e) {
    return fail(oneLine(e));
  }
  // Loaded only for a session: --remote, help and --version start without them.
  const [{ Session }, { openImages }, { Shell }, { StreamLineSource }, { inspectBanner, KeyReader, openOptions }] = await Promise.all([
    import('./runtime/session/session.js'),
    import('./runtime/open/open.js'),
    import('./repl/shell.js'),
    import('./repl/input.js'),
    import('./repl/setup.js'),
  ]);
  // The shell's error stream (a resident session's is its current client's); the session says nothing before `shell` exists.
  const diagnostics = (line: string): void => void shell.err.write(line);
  const wire = (s: Session): Session => {
    s.on('notice', (l) => diagnostics(`${PROGRAM}: ${l}\n`));
    s.on('trace', (l) => diagnostics(`${dialect === 'guestfish' ? 'libguestfs' : 'guestsh'}: trace: ${l}\n`));
    if (opts.verbose || s.settings.verbose) s.on('console', (l) => diagnostics(`${l}\n`));
    return s;
  };
  // Standard input's lines, read by -i's keys, then the script (or a command's keys and FileIn "-"): one reader, so none takes another's lines.
  let stdinLines: InstanceType<typeof StreamLineSource> | null = null;
  const stdin = (): InstanceType<typeof StreamLineSource> => (stdinLines ??= new StreamLineSource(process.stdin, '*stdin*'));
  const keys = new KeyReader(opts, stdin);
  const session = wire(new Session());
  // -v and -x add to LIBGUESTFS_DEBUG and LIBGUESTFS_TRACE, as in guestfish: an option left out does not turn them off.
  Object.assign(session.settings, {
    verbose: opts.verbose || session.settings.verbose,
    trace: opts.trace || session.settings.trace,
    autosync: opts.autosync,
    network: opts.network,
  });
  if (opts.allowBacking) session.settings.backing = 'any';
  const shell = new Shell(session, {
    json: opts.json,
    interactive,
    progress: opts.progressBars ?? (interactive && Boolean(process.stderr.isTTY)),
    signal: stop.signal,
    dialect,
    keys,
  }, (old, fresh) => {
    if (fresh) {
      // reopen: a new handle, as guestfish makes one (the shell carries over what guestfish does).
      const s = new Session();
      if (opts.allowBacking) s.settings.backing = 'any';
      return wire(s);
    }
    // The old session's settings already hold what the environment set.
    const s = new Session({ env: {} });
    Object.assign(s.settings, old.settings);
    return wire(s);
  });

  // At the prompt Ctrl-C arrives as a key (it cancels the running call); a
  // signal ends the session: what no merge has begun on is discarded, a
  // merge under way completes (close() waits for it), and guestsh exits.
  const end = (): void => void shell.session.close().finally(() => process.exit(stop.exitCode(1)));
  if (stop.signal.aborted) end();
  else stop.signal.addEventListener('abort', end, { once: true });
  try {
    let root: string | null;
    try {
      ({ root } = await openImages(session, openOptions(opts, keys)));
    } catch (e) {
      // The images could not be opened, launched or mounted: 4, as for `guestsh run`.
      return fail(oneLine(e), 4);
    }
    let ok: boolean;
    if (opts.listen) {
      const { serveResident } = await import('./repl/resident.js');
      return stop.exitCode(await serveResident(shell, opts, (good) => finish(shell, opts, good, false)));
    }
    if (opts.commands.length) {
      shell.stdinSource = stdin();
      ok = await shell.runCommands(opts.commands);
    } else if (opts.file !== null || !interactive) {
      const src = opts.file !== null ? StreamLineSource.file(opts.file) : stdin();
      ok = await shell.runSource(src, true);
    } else {
      const { interactiveShell } = await import('./repl/interactive.js');
      const banner = root ? await inspectBanner(shell.session, root) : '';
      ok = await interactiveShell(shell, banner);
    }
    await finish(shell, opts, ok, interactive);
    return stop.exitCode(ok ? 0 : 1);
  } catch (e) {
    // Under a stop, whatever failed failed because of it; `end` reports the exit.
    return stop.received ? stop.exitCode(1) : fail(oneLine(e));
  } finally {
    await shell.session.close();
  }
}

/**
 * The end of a shell run: the images keep the changes (shutdown commits),
 * lose them (close discards), or, with --dry-run, show them and lose them.
 * Any failed command means discard, unless --commit says otherwise.
 */
async function finish(shell: Shell, opts: Options, ok: boolean, interactive: boolean): Promise<void> {
  const s = shell.session;
  const changing = s.state === 'ready' && s.drives.some((d) => d.tx?.open);
  if (opts.dryRun) {
    if (!changing) return;
    const changes = await s.changes();
    if (opts.json) process.stdout.write(`${JSON.stringify({ changes })}\n`);
    else for (const c of changes) process.stdout.write(`${c.change === 'added' ? '+' : c.change === 'removed' ? '-' : 'M'} ${c.filesystem}:${c.path}\n`);
    return;
  }
  // Nothing written (only reads and mounts): nothing to keep, and the image stays byte-identical.
  const wrote = s.writeCalls > 0;
  let keep = opts.changes === 'commit' || (opts.changes === null && ok && wrote);
  // Asked only after a command that may have written (not after cat or ls);
  // Enter keeps the changes, as a guestfish user's writes persist.
  if (changing && wrote && opts.changes === null && interactive && process.stdin.isTTY) keep = await askToKeep(s);
  if (keep) await s.shutdown({ signal: stop.signal, confirmStop: () => stop.confirm() });
}

async function askToKeep(s: Session): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const images = s.drives.filter((d) => d.tx).map((d) => d.path).join(', ');
    const answer = await rl.question(`Keep the changes to ${images}? [Y/n] `);
    return !/^n(o)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
