// What `help` prints. The synopsis, argument kinds and flags come from the
// spec (actions) and the command table (meta-commands); the prose comes from
// the libguestfs documentation installed on this machine (guestfish(1),
// rendered by man at run time). No documentation text is stored in guestsh.

import { execFileSync } from 'node:child_process';
import type { ActionSpec } from '../spec/types.js';
import { kebab, kindName, signature } from './parse.js';
import type { MetaCommand } from './context.js';

let manText: string[] | null | undefined;

/** guestfish(1) as plain text lines, or null when man or the page is missing. */
function manual(): string[] | null {
  if (manText !== undefined) return manText;
  try {
    const raw = execFileSync('man', ['-P', 'cat', 'guestfish'], {
      env: { ...process.env, MANWIDTH: '80', MAN_KEEP_FORMATTING: '0', GROFF_NO_SGR: '1' },
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 64 * 1024 * 1024,
      timeout: 10_000,
    }).toString('utf8');
    // Strip overstrike formatting (bold/underline) in case col(1) is absent.
    manText = raw.replace(/.\x08/g, '').split('\n');
  } catch {
    manText = null;
  }
  return manText;
}

/** The guestfish(1) subsection for `name` (its heading aliases, synopsis and prose). */
export function manualSection(name: string): string | null {
  const lines = manual();
  if (!lines) return null;
  const heading = (l: string | undefined): boolean => l !== undefined && /^ {3}\S/.test(l);
  const start = lines.findIndex((l) => l === `   ${name}`);
  if (start < 0) return null;
  let i = start;
  while (heading(lines[i + 1])) i++;
  let end = i + 1;
  while (end < lines.length && !heading(lines[end]) && !/^\S/.test(lines[end]!)) end++;
  const body = lines.slice(i + 1, end).map((l) => l.replace(/^ {7}/, ''));
  while (body.length && body[body.length - 1]!.trim() === '') body.pop();
  while (body.length && body[0]!.trim() === '') body.shift();
  return `${body.join('\n')}\n`;
}

/** The first sentence of a section's prose, whole (a summary cut mid-way says less than none). */
function firstSentence(section: string | null): string {
  if (!section) return '';
  const prose = section
    .split('\n')
    .filter((l) => !/^ /.test(l))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  const m = /^(.*?[.!?])(\s|$)/.exec(prose);
  return (m ? m[1]! : prose).trim();
}

/** `help` with no command: how a session goes, in a screenful, and where the rest is. */
export const HELP_GUIDE = `guestsh: a shell for disk images (guestfish's commands, and TypeScript).

  add-drive disk.img        add an image (or start with: guestsh -a disk.img)
  run                       launch the appliance (-i on the command line: inspect and mount)
  list-filesystems          what is on the disks
  inspect-os                find operating systems; mount what they use
  mount /dev/sda1 /         mount a filesystem (mount-ro: read-only)
  ls /etc  cat /etc/fstab   look around; write, upload, download, edit to change things
  await g.ls('/')           a TypeScript line: g is the session, with top-level await
  commit / discard          keep or drop the changes so far (quit asks when something changed)
  quit                      leave (also exit, q, Ctrl-D)

  help -l                   every command with a one-line summary
  help CMD                  one command: its arguments, and what it does
  man                       guestsh's manual: options, verbs and this guide
`;

/** \`help -l\`: every command with a one-line summary, meta-commands first; a command guestsh refuses says so. */
export function commandList(meta: readonly MetaCommand[], actions: readonly ActionSpec[], refused: Readonly<Record<string, string>>): string {
  let out = '';
  const row = (n: string, d: string): void => void (out += `${n.padEnd(25)} ${d}\n`);
  // Each alias on a row of its own after its command, as guestfish -h lists them.
  for (const m of meta) for (const name of [m.name, ...m.aliases]) row(name, m.summary);
  for (const a of actions) {
    const summary = firstSentence(manualSection(kebab(a.name))) || signature(a);
    for (const name of [kebab(a.name), ...a.fishAlias]) row(name, refused[a.name] !== undefined ? `(not in guestsh) ${summary}` : summary);
  }
  out += "    Use 'help <cmd>' to show help on a command, or 'man' for guestsh's manual.\n";
  return out;
}

const aliasNote = (aliases: readonly string[]): string => (aliases.length ? ` (alias: ${aliases.join(', ')})` : '');

/** `help CMD` for a meta-command. */
export function metaHelp(m: MetaCommand): string {
  const doc = manualSection(m.name);
  return `${m.name}${aliasNote(m.aliases)} - ${m.summary}\n  ${m.synopsis}\n${doc ? `\n${doc}` : ''}`;
}

/** `help CMD` for an action: synopsis and argument kinds from the spec, prose from guestfish(1); a refusal first. */
export function actionHelp(a: ActionSpec, refusedBecause?: string): string {
  let out = refusedBecause !== undefined ? `${kebab(a.name)}: not supported in guestsh: ${refusedBecause}\n\n` : '';
  out += `${kebab(a.name)}${aliasNote(a.fishAlias)}\n  ${signature(a)}\n`;
  if (a.args.length || a.optargs.length) {
    out += '\n';
    for (const x of a.args) out += `  ${x.name.padEnd(16)} ${kindName(x)}\n`;
    for (const x of a.optargs) out += `  ${`${x.name}:`.padEnd(16)} ${kindName(x)} (optional)\n`;
  }
  const ret = a.ret.kind === 'RStruct' || a.ret.kind === 'RStructList' ? `${a.ret.kind} ${a.ret.struct}` : a.ret.kind;
  out += `\n  returns: ${ret}${a.procNr === null ? '  (library-side)' : ''}\n`;
  if (a.deprecatedBy) {
    out += `  DEPRECATED${a.deprecatedBy.replacedBy ? `: use ${kebab(a.deprecatedBy.replacedBy)} instead` : ''}\n`;
  }
  if (a.protocolLimitWarning) out += '  Protocol limit: results travel in one message of at most 4 MiB; use download for large data.\n';
  if (a.optional) out += `  Optional feature group: ${a.optional} (see 'supported')\n`;
  const doc = manualSection(kebab(a.name));
  out += doc ? `\n${doc}` : '\n  (no installed documentation found: install libguestfs-tools for guestfish(1))\n';
  return out;
}
