// guestfish's hexedit and event handlers, run by the shell against the real
// appliance. hexedit's editor is a script that edits the downloaded copy
// without a terminal; the event handlers are host commands whose output is
// the shell's.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { guestsh, isolatedTmpdir, qemuUnder } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

function script(name: string, lines: string[]): string {
  const file = join(tmp.dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o755 });
  return file;
}

describe('hexedit', () => {
  it('edits a range of a file and of a device with $HEXEDITOR, and writes nothing back when the editor fails', { timeout: scaled(240_000) }, async () => {
    const seen = join(tmp.dir, 'seen');
    // Records what it was given, then overwrites bytes 1 and 2 of it.
    const editor = script('editor.sh', ['#!/bin/sh', `cat "$1" >> ${seen}`, `echo >> ${seen}`, `printf XY | dd of="$1" bs=1 seek=1 conv=notrunc 2>/dev/null`]);
    const failing = script('failing.sh', ['#!/bin/sh', `printf ZZ | dd of="$1" conv=notrunc 2>/dev/null`, 'exit 3']);
    const gfs = script('hexedit.gfs', [
      'scratch 16M',
      'scratch 1M',
      'run',
      'mkfs ext2 /dev/sda',
      'mount /dev/sda /',
      'write /f 0123456789',
      'hexedit /f 2 4',
      'cat /f',
      `setenv HEXEDITOR ${failing}`,
      '-hexedit /f',
      'cat /f',
      'touch /empty',
      '-hexedit /empty',
      `setenv HEXEDITOR ${editor}`,
      'pwrite-device /dev/sdb abcdefgh 4096',
      'hexedit /dev/sdb 4096 8',
      'pread-device /dev/sdb 8 4096',
      'echo',
      'hexedit /f 8',
      'cat /f',
    ]);
    const r = await guestsh(['-f', gfs], { ...process.env, HEXEDITOR: editor });
    // The range only (4 bytes from 2), written back at its offset; the whole-file form (first 8 bytes) likewise.
    expect(r.stdout).toBe('012XY56789\n012XY56789\n8\naXYdefgh\n0XYXY56789\n');
    expect(readFileSync(seen, 'utf8')).toBe('2345\nabcdefgh\n012XY567\n');
    expect(r.stderr).toBe(
      `guestsh: ${gfs}:10: error: ${failing} exited with status 3; nothing was written back\n` +
        `guestsh: ${gfs}:13: error: hexedit: /empty is a zero length file or device\n`,
    );
    expect(r.code).toBe(0);
    expect(qemuUnder(tmp.dir)).toEqual([]);
  });
});

describe('event handlers', () => {
  it('run for launch_done, subprocess_quit (qemu killed) and close, listed as guestfish lists them; refused events say why', { timeout: scaled(240_000) }, async () => {
    const pidFile = join(tmp.dir, 'qemu.pid');
    const gfs = script('events.gfs', [
      `event life launch_done,subprocess_quit,close 'echo "$EVENT $#"'`,
      `event said trace 'echo "trace: $1"'`,
      'list-events',
      '-event bad library true',
      '-event bad nosuch true',
      'scratch 16M',
      'run',
      `pid | cat > ${pidFile}`,
      `! kill -9 $(cat ${pidFile})`,
      '-ping-daemon',
      'delete-event said',
      'list-events',
      'scratch 16M',
      'run',
      'trace true',
      'ping-daemon',
    ]);
    const r = await guestsh(['-f', gfs]);
    expect(r.stdout).toBe(
      [
        `"life" (0): close,launch_done,subprocess_quit: echo "$EVENT $#"`,
        `"said" (1): trace: echo "trace: $1"`,
        'launch_done 0',
        'subprocess_quit 0',
        `"life" (0): close,launch_done,subprocess_quit: echo "$EVENT $#"`,
        'launch_done 0',
        'close 0',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toMatch(new RegExp(`^guestsh: ${gfs}:4: error: event: library: not supported in guestsh: guestsh has no library debug messages`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^guestsh: ${gfs}:5: error: event: unknown event name 'nosuch'`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^guestsh: ${gfs}:10: error: ping_daemon: the appliance died: qemu was killed by SIGKILL`, 'm'));
    expect(r.code).toBe(0);
    expect(qemuUnder(tmp.dir)).toEqual([]);
  });
});
