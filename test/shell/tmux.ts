// Drives a real interactive guestsh through a tmux pseudo-terminal: send
// keys, read the screen, wait for text to appear.

import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { scaled } from '../slowdown.js';

export class TmuxPane {
  private constructor(readonly name: string) {}

  /** Starts `command` (a shell command line) in a detached tmux session. */
  static start(name: string, command: string, env: Record<string, string> = {}): TmuxPane {
    try {
      execFileSync('tmux', ['kill-session', '-t', name], { stdio: 'ignore' });
    } catch {
      // no such session
    }
    const exports = Object.entries(env)
      .map(([k, v]) => `${k}='${v.replaceAll("'", "'\\''")}'`)
      .join(' ');
    // `; sleep` keeps the pane readable after the shell exits.
    execFileSync('tmux', ['new-session', '-d', '-s', name, '-x', '160', '-y', '50', `env ${exports} ${command}; echo "[exit $?]"; sleep 600`]);
    return new TmuxPane(name);
  }

  keys(...keys: string[]): void {
    execFileSync('tmux', ['send-keys', '-t', this.name, ...keys]);
  }

  /** Sends text literally (no key-name interpretation). */
  type(text: string): void {
    execFileSync('tmux', ['send-keys', '-t', this.name, '-l', text]);
  }

  screen(): string {
    return execFileSync('tmux', ['capture-pane', '-p', '-J', '-t', this.name, '-S', '-2000']).toString('utf8');
  }

  /** The last non-empty line on the screen (usually the prompt line being edited). */
  lastLine(): string {
    const lines = this.screen().split('\n').filter((l) => l.trim() !== '');
    return lines[lines.length - 1] ?? '';
  }

  async waitFor(test: RegExp | ((screen: string) => boolean), timeoutMs = scaled(30_000)): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (typeof test === 'function' ? test(s) : test.test(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(test)}; screen:\n${s}`);
      await sleep(100);
    }
  }

  /** Waits until the screen has `n` prompts (each command ends by printing a new one). */
  async waitPrompts(n: number, timeoutMs = scaled(60_000)): Promise<string> {
    return this.waitFor((s) => (s.match(/><fs> /g) ?? []).length >= n, timeoutMs);
  }

  prompts(): number {
    return (this.screen().match(/><fs> /g) ?? []).length;
  }

  kill(): void {
    try {
      execFileSync('tmux', ['kill-session', '-t', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}
