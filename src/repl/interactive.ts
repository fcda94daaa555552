// The interactive shell: prompt `><fs> `, line editing and history
// (~/.guestsh_history), tab completion, Ctrl-C to cancel the running call
// (the session stays), Ctrl-D to quit, and TypeScript lines evaluated against
// the live session.

import { appendFileSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { Completer } from './completion.js';
import type { LineSource } from './input.js';
import type { Shell } from './shell.js';
import { isTypeScriptLine, TsEvaluator } from './ts-eval.js';
import { resolveCommand } from '../commands/table.js';

const isCommand = (name: string): boolean => resolveCommand(name) !== null;

export const PROMPT = '><fs> ';
const HISTORY_MAX = 1000;

export function historyFile(): string {
  return process.env.GUESTSH_HISTORY ?? join(process.env.HOME ?? homedir(), '.guestsh_history');
}

function loadHistory(): string[] {
  try {
    const lines = readFileSync(historyFile(), 'utf8').split('\n').filter(Boolean);
    return lines.slice(-HISTORY_MAX).reverse();
  } catch {
    return [];
  }
}

/** Lines typed at the prompt, as a LineSource (heredocs read from it too). */
class PromptSource implements LineSource {
  readonly name = 'prompt';
  lineNo = 0;
  private queue: string[] = [];
  private waiting: ((l: string | null) => void) | null = null;
  closed = false;

  constructor(private readonly rl: Interface) {
    rl.on('line', (l) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(l);
      } else this.queue.push(l);
    });
    rl.on('close', () => {
      this.closed = true;
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(null);
      }
    });
  }

  readLine(prompt = PROMPT): Promise<string | null> {
    const q = this.queue.shift();
    if (q !== undefined) {
      this.lineNo++;
      return Promise.resolve(q);
    }
    if (this.closed) return Promise.resolve(null);
    this.rl.setPrompt(prompt);
    this.rl.prompt();
    return new Promise((resolve) => {
      this.waiting = (l) => {
        if (l !== null) this.lineNo++;
        resolve(l);
      };
    });
  }

  async readSecret(prompt: string, echo: boolean): Promise<string | null> {
    const rl = this.rl as unknown as { _writeToOutput: (s: string) => void; history: string[] };
    const write = rl._writeToOutput;
    // The prompt shows, the typing does not (unless --echo-keys).
    if (!echo) rl._writeToOutput = (s) => void (s.startsWith(prompt) ? write.call(this.rl, prompt) : undefined);
    try {
      const line = await this.readLine(prompt);
      // A passphrase is never kept in the line editor's history.
      if (line !== null && rl.history[0] === line) rl.history.shift();
      return line;
    } finally {
      rl._writeToOutput = write;
      if (!echo) process.stdout.write('\n');
    }
  }

  async *rest(): AsyncIterable<Uint8Array> {
    // FileIn "-" at the prompt reads lines until Ctrl-D... which would end the
    // shell; guestfish reads the terminal too. Refuse instead.
    throw new Error('FileIn "-" is not available at the interactive prompt; use -<<END (a here document) instead');
  }
}

export async function interactiveShell(shell: Shell, banner: string): Promise<boolean> {
  const completer = new Completer(() => shell.session);
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    history: loadHistory(),
    historySize: HISTORY_MAX,
    removeHistoryDuplicates: true,
    prompt: PROMPT,
    completer: (line: string, cb: (err: Error | null, result: [string[], string]) => void) => {
      completer.complete(line).then(
        (r) => cb(null, r),
        () => cb(null, [[], line]),
      );
    },
  });
  const src = new PromptSource(rl);
  // TypeScript's calls go through the shell, so Ctrl-C cancels them as it does typed commands.
  const ts = new TsEvaluator(() => ({
    call: (name, args, optargs) => shell.call(name, args, optargs),
    g: shell.session.g,
  }));
  let running: 'command' | 'typescript' | null = null;

  rl.on('SIGINT', () => {
    if (running) {
      if (shell.current) {
        shell.current.abort();
        process.stdout.write('\n^C: cancelling the running transfer\n');
      } else if (running === 'typescript') {
        ts.stop();
        process.stdout.write('\n^C: stopped the TypeScript line; its sandbox restarts, so earlier bindings are gone\n');
      } else {
        process.stdout.write('\n^C: this call cannot be interrupted; it will finish by itself\n');
      }
      return;
    }
    // At the prompt: drop the line being typed, like a shell.
    process.stdout.write('^C\n');
    (rl as unknown as { line: string }).line = '';
    rl.prompt();
  });

  process.stdout.write(
    `\nWelcome to guestsh, the guest filesystem shell (guestfish commands, and TypeScript: lines starting with await, const, let, for, g. or >).\n\n` +
      `Type: 'help' for help on commands\n      'man' to read the manual\n      'quit' to quit the shell\n\n`,
  );
  if (banner) process.stdout.write(`${banner}\n`);

  while (!shell.quit) {
    const line = await src.readLine(PROMPT);
    if (line === null) break;
    if (line.trim()) {
      try {
        appendFileSync(historyFile(), `${line}\n`, { mode: 0o600 });
      } catch {
        // no writable home: history stays in memory
      }
    }
    const typescript = isTypeScriptLine(line, isCommand, (name) => ts.inScope(name));
    running = typescript ? 'typescript' : 'command';
    try {
      if (typescript) {
        try {
          const v = await ts.evaluate(line);
          if (v !== undefined) process.stdout.write(`${TsEvaluator.show(v)}\n`);
        } catch (e) {
          process.stderr.write(`guestsh: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
        }
      } else {
        await shell.runLine(line, src, false);
      }
    } finally {
      running = null;
      completer.invalidate();
    }
  }
  rl.close();
  process.stdout.write('\n');
  return true;
}
