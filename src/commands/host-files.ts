// Meta-commands that hand a guest file to a host program: edit (vi, emacs)
// with $EDITOR, more (less) with $PAGER, display with
// $GUESTFISH_DISPLAY_IMAGE, hexedit with $HEXEDITOR. The file is downloaded
// to a private temporary directory and removed afterwards; an edited file is
// uploaded beside the original and renamed over it, so a failed upload
// leaves the original whole. hexedit writes its range back in place (a
// device cannot be renamed over).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CommandFailed, type CommandContext } from './context.js';
import { parseInteger } from './parse.js';
import { sh, shellQuote, waitExit } from './host.js';

async function withLocalCopy<T>(
  ctx: CommandContext,
  remote: string,
  use: (file: string) => Promise<T>,
  fetch: (file: string) => Promise<void> = (file) => ctx.g.download(remote, file),
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'guestsh-view-'));
  try {
    const file = join(dir, basename(remote) || 'file');
    await fetch(file);
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

/** What hexedit downloads at most without a length (guestfish's limit). */
const HEXEDIT_WHOLE_MAX = 16n * 1024n * 1024n;

/**
 * guestfish's hexedit: bytes of a guest file or device (all of it, the
 * first `max`, or `max` from `start`; sizes take k, M, G… suffixes) in
 * $HEXEDITOR (default hexedit), written back at the same offset if changed.
 */
export async function hexedit(ctx: CommandContext, remote: string, range: readonly string[]): Promise<void> {
  const size = remote.startsWith('/dev/') ? await ctx.g.blockdevGetsize64(remote) : await ctx.g.filesize(remote);
  if (size === 0n) throw new CommandFailed(`hexedit: ${remote} is a zero length file or device`);
  let start = 0n;
  let max = size;
  if (range.length === 0 && size > HEXEDIT_WHOLE_MAX) {
    throw new CommandFailed(`hexedit: ${remote} is larger than 16MB: give a length ('hexedit ${remote} 1M') or a range ('hexedit ${remote} START LENGTH')`);
  }
  if (range.length > 0) {
    if (range.length === 2) start = parseInteger(range[0]!, 'start');
    max = parseInteger(range.at(-1)!, 'max');
    if (start + max > size) max = size - start;
  }
  if (start < 0n || max <= 0n) throw new CommandFailed(`hexedit: invalid range: ${remote} has ${size} bytes`);
  const editor = process.env.HEXEDITOR ?? 'hexedit';
  await withLocalCopy(
    ctx,
    remote,
    async (file) => {
      const before = readFileSync(file);
      await runOn(editor, file, '; nothing was written back');
      if (before.equals(readFileSync(file))) return;
      await ctx.g.uploadOffset(file, remote, start);
    },
    (file) => ctx.g.downloadOffset(remote, file, start, max),
  );
}
