// Meta-commands that hand a guest file to a host program: edit (vi, emacs)
// with $EDITOR, more (less) with $PAGER, display with
// $GUESTFISH_DISPLAY_IMAGE. The file is downloaded to a private temporary
// directory and removed afterwards; an edited file is uploaded beside the
// original and renamed over it, so a failed upload leaves the original whole.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CommandFailed, type CommandContext } from './context.js';
import { sh, shellQuote, waitExit } from './host.js';

async function withLocalCopy<T>(ctx: CommandContext, remote: string, use: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'guestsh-view-'));
  try {
    const file = join(dir, basename(remote) || 'file');
    await ctx.g.download(remote, file);
    return await use(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runOn(program: string, file: string, failure: string): Promise<void> {
  const code = await waitExit(sh(`${program} ${shellQuote(file)}`, 'inherit'));
  if (code !== 0) throw new CommandFailed(`${program} exited with status ${code}${failure}`);
}

/** Shows a guest file with a host program (pager, image viewer). */
export function view(ctx: CommandContext, remote: string, program: string): Promise<void> {
  return withLocalCopy(ctx, remote, (file) => runOn(program, file, ''));
}

/** Edits a guest file with a host editor; nothing is written back when the editor fails or changes nothing. */
export function edit(ctx: CommandContext, remote: string, editor: string): Promise<void> {
  return withLocalCopy(ctx, remote, async (file) => {
    const before = readFileSync(file);
    await runOn(editor, file, '; the file was not changed');
    if (before.equals(readFileSync(file))) return;
    // The file the name resolves to is replaced, as libguestfs does: a
    // symlink stays a symlink, its target gets the new content.
    const target = await ctx.g.realpath(remote);
    const beside = `${dirname(target) === '/' ? '' : dirname(target)}/.guestsh-edit-${process.pid}`;
    await ctx.g.upload(file, beside);
    try {
      await ctx.g.copyAttributes(target, beside, { all: true });
    } catch {
      // owner and mode are best effort (some filesystems have neither)
    }
    await ctx.g.mv(beside, target);
  });
}

/** The editor each name of `edit` means. */
export function editorFor(calledAs: string): string {
  if (calledAs === 'vi') return 'vi';
  if (calledAs === 'emacs') return 'emacs -nw';
  return process.env.EDITOR ?? 'vi';
}
