// The shell's pieces without an appliance: guestfish's line syntax, argument
// parsing (numbers, booleans, string lists, optional arguments), output
// formats per return kind, --json, options, TypeScript line compilation, and
// the CLI paths that fail before anything boots.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommandArgs, parseInteger, parseStringList } from '../src/commands/parse.js';
import { actionByName } from '../src/spec/index.js';
import { cG, formatJson, formatResult } from '../src/repl/format.js';
import { parseLine } from '../src/repl/lexer.js';
import { parseOptions } from '../src/repl/options.js';
import { compileLine, isTypeScriptLine, TsEvaluator } from '../src/repl/ts-eval.js';
import { splitPartial } from '../src/repl/completion.js';
import { globToRegExp } from '../src/commands/glob.js';
import { ext4Image } from './helpers.js';
import { scaled } from './slowdown.js';

const GUESTSH = resolve(import.meta.dirname, '..', 'bin', 'guestsh.js');
const tmp = mkdtempSync(join(tmpdir(), 'guestsh-shell-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function guestsh(args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile('node', [GUESTSH, ...args], { cwd: tmp, timeout: scaled(60_000) }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      done({ code, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

const A = (name: string) => actionByName(name)!;

describe('line syntax', () => {
  it('splits words, honours both quote styles and C escapes', () => {
    expect(parseLine(`echo a  "b c" 'd "e"' "\\x41\\101\\n\\t\\\\\\""`)).toEqual({
      type: 'command',
      name: 'echo',
      args: ['a', 'b c', 'd "e"', 'AA\n\t\\"'],
      pipe: null,
      continueOnError: false,
    });
  });
  it('recognises comments, host commands, inline commands, -cmd and pipes', () => {
    expect(parseLine('   # hi')).toEqual({ type: 'none' });
    expect(parseLine('')).toEqual({ type: 'none' });
    expect(parseLine('!ls -l')).toMatchObject({ type: 'host', command: 'ls -l' });
    expect(parseLine('<!echo x')).toMatchObject({ type: 'inline', command: 'echo x' });
    expect(parseLine('-cat /x')).toMatchObject({ type: 'command', name: 'cat', continueOnError: true });
    expect(parseLine('cat /x | grep "a b" | wc')).toMatchObject({ args: ['/x'], pipe: ' grep "a b" | wc' });
    expect(parseLine('echo a|b')).toMatchObject({ args: ['a|b'], pipe: null });
  });
  it('rejects unterminated quotes, bad escapes and glued arguments like guestfish', () => {
    expect(() => parseLine('echo "abc')).toThrow(/unterminated double quote/);
    expect(() => parseLine("echo 'abc")).toThrow(/unterminated single quote/);
    expect(() => parseLine('echo "\\q"')).toThrow(/invalid escape/);
    expect(() => parseLine('echo "\\x00"')).toThrow(/invalid escape/);
    expect(() => parseLine(`echo 'a'b`)).toThrow(/not separated by whitespace/);
  });
  it('expands ~ in bare words only', () => {
    const home = process.env.HOME!;
    expect(parseLine('lcd ~/x')).toMatchObject({ args: [`${home}/x`] });
    expect(parseLine('lcd "~/x"')).toMatchObject({ args: ['~/x'] });
  });
});

describe('argument parsing', () => {
  it('reads integers like strtoll base 0 with size suffixes', () => {
    expect(parseInteger('10', 'n')).toBe(10n);
    expect(parseInteger('010', 'n')).toBe(8n);
    expect(parseInteger('0x1F', 'n')).toBe(31n);
    expect(parseInteger('-5', 'n')).toBe(-5n);
    expect(parseInteger('1k', 'n')).toBe(1024n);
    expect(parseInteger('2M', 'n')).toBe(2n * 1024n * 1024n);
    expect(parseInteger('1KiB', 'n')).toBe(1024n);
    expect(parseInteger('1kB', 'n')).toBe(1000n);
    expect(parseInteger('1G', 'n')).toBe(1024n ** 3n);
    expect(() => parseInteger('12x', 'n')).toThrow(/not an integer/);
    expect(() => parseInteger('08', 'n')).toThrow(/not an integer/);
  });
  it('splits StringLists on blanks with single-quote grouping', () => {
    expect(parseStringList('a b  c')).toEqual(['a', 'b', 'c']);
    expect(parseStringList("'a b' c")).toEqual(['a b', 'c']);
    expect(parseStringList("x'y z'w")).toEqual(['xy zw']);
    expect(parseStringList("it\\'s")).toEqual(["it's"]);
    expect(parseStringList('')).toEqual([]);
    expect(() => parseStringList("'open")).toThrow(/runaway quote/);
  });
  it('types every argument from the spec and names the bad one', () => {
    expect(parseCommandArgs(A('mkfs'), ['ext4', '/dev/sda1', 'blocksize:4k', 'label:x'])).toEqual({
      args: ['ext4', '/dev/sda1'],
      optargs: { blocksize: 4096, label: 'x' },
    });
    expect(parseCommandArgs(A('part_set_bootable'), ['/dev/sda', '1', 'YES']).args).toEqual(['/dev/sda', 1, true]);
    expect(parseCommandArgs(A('set_path'), ['']).args).toEqual([null]);
    expect(() => parseCommandArgs(A('mkfs'), ['ext4'])).toThrow(/expects 2 to 7 argument\(s\), got 1; usage: mkfs fstype device/);
    expect(() => parseCommandArgs(A('mkfs'), ['ext4', '/dev/sda', 'bogus:1'])).toThrow(/unknown optional argument "bogus:1"/);
    expect(() => parseCommandArgs(A('part_set_bootable'), ['/dev/sda', 'one', 'true'])).toThrow(/argument 'partnum' \(32-bit integer\)/);
    expect(() => parseCommandArgs(A('fill'), ['1', '4294967296', '/x'])).toThrow(/out of range/);
  });
});

describe('output formats', () => {
  it('prints each return kind the way guestfish does', () => {
    expect(formatResult(A('get_umask'), 0o22)).toBe('022\n');
    expect(formatResult(A('get_umask'), 0)).toBe('0\n');
    expect(formatResult(A('part_get_mbr_id'), 0x83)).toBe('0x83\n');
    expect(formatResult(A('part_get_mbr_id'), 0)).toBe('0\n');
    expect(formatResult(A('filesize'), 12n)).toBe('12\n');
    expect(formatResult(A('is_dir'), true)).toBe('true\n');
    expect(formatResult(A('get_append'), null)).toBe('(null)\n');
    expect(formatResult(A('list_devices'), ['/dev/sda', '/dev/sdb'])).toBe('/dev/sda\n/dev/sdb\n');
    expect(formatResult(A('list_filesystems'), { '/dev/sda1': 'ext4' })).toBe('/dev/sda1: ext4\n');
    expect(formatResult(A('read_file'), Buffer.from([0, 1, 2]))).toEqual(Buffer.from([0, 1, 2]));
    expect(formatResult(A('readdir'), [{ ino: 2n, ftyp: 'd', name: '.' }])).toBe('[0] = {\n  ino: 2\n  ftyp: d\n  name: .\n}\n');
    expect(formatResult(A('getxattrs'), [{ attrname: 'user.a', attrval: Buffer.from('a\x01b') }])).toBe(
      '[0] = {\n  attrname: user.a\n  attrval: a\\x01b\n}\n',
    );
  });
  it('prints FOptPercent with %g and nothing when unset', () => {
    expect(cG(12.5)).toBe('12.5');
    expect(cG(100)).toBe('100');
    expect(cG(0.0001)).toBe('0.0001');
    expect(cG(1234567)).toBe('1.23457e+06');
    expect(cG(1 / 3)).toBe('0.333333');
  });
  it('--json prints one document per result; 64-bit values as numbers when exact, strings otherwise', () => {
    expect(formatJson(A('filesize'), 12n)).toBe('12\n');
    expect(formatJson(A('filesize'), 2n ** 60n)).toBe('"1152921504606846976"\n');
    expect(formatJson(A('list_filesystems'), { '/dev/sda1': 'ext4' })).toBe('{"/dev/sda1":"ext4"}\n');
    expect(formatJson(A('read_file'), Buffer.from([0xff]))).toBe('{"base64":"/w=="}\n');
    // One line per command: a call that returns nothing prints null.
    expect(formatJson(A('mkdir'), undefined)).toBe('null\n');
  });
});

describe('options', () => {
  it('parses guestfish options and : separated commands', () => {
    const o = parseOptions(['--ro', '--format=qcow2', '-a', 'x.qcow2', '-i', '-m', '/dev/sda1:/boot:ro', '-N', 'out.img=fs:ext4', 'cat', '/etc/x', ':', 'ls', '/']);
    expect(o.readonly).toBe(true);
    expect(o.inspector).toBe(true);
    expect(o.drives).toEqual([
      { kind: 'add', path: 'x.qcow2', format: 'qcow2' },
      { kind: 'prepared', path: 'out.img', type: 'fs', params: ['ext4'] },
    ]);
    expect(o.mounts).toEqual([{ device: '/dev/sda1', mountpoint: '/boot', options: 'ro', fstype: undefined }]);
    expect(o.commands).toEqual([['cat', '/etc/x'], ['ls', '/']]);
    expect(parseOptions(['-N', 'disk']).drives).toEqual([{ kind: 'prepared', path: 'test1.img', type: 'disk', params: [] }]);
    expect(parseOptions(['-ix']).trace).toBe(true);
    expect(() => parseOptions(['--bogus'])).toThrow(/unknown option/);
    // guestfish's URI form of -a: file:// is a path (percent-decoded); a network drive says why not.
    expect(parseOptions(['-a', 'file:///srv/my%20disk.img']).drives).toEqual([{ kind: 'add', path: '/srv/my disk.img', format: undefined }]);
    expect(() => parseOptions(['-a', 'nbd://example.com/disk'])).toThrow(/network drives \(nbd:\/\/\) are not supported/);
  });
});

describe('TypeScript lines', () => {
  it('tells TypeScript from commands', () => {
    const isCmd = (n: string) => ['ls', 'cat', 'echo'].includes(n);
    expect(isTypeScriptLine('await g.ls("/")', isCmd)).toBe(true);
    expect(isTypeScriptLine('const x = 1', isCmd)).toBe(true);
    expect(isTypeScriptLine('> 1 + 1', isCmd)).toBe(true);
    expect(isTypeScriptLine('x.length', isCmd)).toBe(true);
    expect(isTypeScriptLine('ls /etc', isCmd)).toBe(false);
    expect(isTypeScriptLine('list-devics', isCmd)).toBe(false);
  });
  it('takes a typo followed by a path or nothing for a mistyped command, not for TypeScript', () => {
    const isCmd = (n: string) => ['ls', 'mkdir', 'cat'].includes(n);
    expect(isTypeScriptLine('mkdri /foo', isCmd)).toBe(false);
    expect(isTypeScriptLine('lss /', isCmd)).toBe(false);
    expect(isTypeScriptLine('clear', isCmd)).toBe(false);
    // A binding in scope is an expression; TypeScript's own shapes are code whatever the name.
    const inScope = (n: string) => n === 'n';
    expect(isTypeScriptLine('n * 2', isCmd, inScope)).toBe(true);
    expect(isTypeScriptLine('n', isCmd, inScope)).toBe(true);
    expect(isTypeScriptLine('x = 2', isCmd, inScope)).toBe(true);
    expect(isTypeScriptLine('Math.max(1, 2)', isCmd, inScope)).toBe(true);
  });
  it("knows the prompt's scope: builtins, and what earlier lines bound", async () => {
    const ev = new TsEvaluator(() => ({ call: async () => [] }) as never);
    expect(ev.inScope('JSON')).toBe(true);
    expect(ev.inScope('lss')).toBe(false);
    await ev.evaluate('const lss = 3');
    expect(ev.inScope('lss')).toBe(true);
    expect(isTypeScriptLine('lss / 3', () => false, (n) => ev.inScope(n))).toBe(true);
    expect(await ev.evaluate('lss / 3')).toBe(1);
  });
  it('reports a syntax error as one line with its column, not swc\'s backtrace', () => {
    expect(() => compileLine('const x = ;')).toThrow(/^column 11: Expression expected$/);
    let message = '';
    try {
      compileLine('if (x {');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe("column 7: Expected ')', got '{'");
  });
  it('keeps bindings between lines, with top-level await', async () => {
    const ev = new TsEvaluator(() => ({ call: async () => ['a', 'b'] }) as never);
    expect(await ev.evaluate('const xs: string[] = await g.ls("/")')).toBeUndefined();
    expect(await ev.evaluate('xs.length')).toBe(2);
    expect(await ev.evaluate('function twice(n: number): number { return n * 2 }')).toBeUndefined();
    expect(await ev.evaluate('let { length: n } = xs; twice(n)')).toBe(4);
    expect(compileLine('const a: number = 1').names).toEqual(['a']);
  });
});

describe('completion helpers', () => {
  it('splits a partial line', () => {
    expect(splitPartial('mkfs ext4 /dev/s')).toEqual({ words: ['mkfs', 'ext4'], current: '/dev/s' });
    expect(splitPartial('cat "/a b/c')).toEqual({ words: ['cat'], current: '/a b/c' });
    expect(splitPartial('ls ')).toEqual({ words: ['ls'], current: '' });
  });
  it('matches globs like fnmatch with FNM_PATHNAME', () => {
    expect(globToRegExp('/dev/sd*').test('/dev/sda1')).toBe(true);
    expect(globToRegExp('/etc/*').test('/etc/a/b')).toBe(false);
    expect(globToRegExp('/dev/sd[ab]').test('/dev/sdb')).toBe(true);
  });
});

describe('the CLI before anything boots', () => {
  it('runs a script from stdin and from -f; echo and host commands need no appliance', async () => {
    const script = 'echo one\n!echo two\n# comment\necho "th\\x72ee"\n';
    expect(await guestsh([], script)).toMatchObject({ code: 0, stdout: 'one\ntwo\nthree\n' });
    writeFileSync(join(tmp, 's.gfs'), script);
    expect(await guestsh(['-f', 's.gfs'])).toMatchObject({ code: 0, stdout: 'one\ntwo\nthree\n' });
  });
  it("help is a short guide, help -l the whole list with whole summaries, help CMD says first what guestsh refuses, man is guestsh's own", async () => {
    const guide = await guestsh([], 'help\n');
    expect(guide.code).toBe(0);
    expect(guide.stdout.split('\n').length).toBeLessThan(30);
    expect(guide.stdout).toMatch(/help -l/);
    const list = await guestsh([], 'help -l\n');
    const rows = list.stdout.split('\n');
    expect(rows.length).toBeGreaterThan(500);
    expect(list.stdout).not.toContain('…');
    expect(rows.find((r) => r.startsWith('add-domain '))).toMatch(/\(not in guestsh\)/);
    const refused = await guestsh([], 'help add-domain\n');
    expect(refused.stdout.split('\n')[0]).toMatch(/^add-domain: not supported in guestsh: .*libvirt/);
    const man = await guestsh([], 'man\n');
    expect(man.code).toBe(0);
    expect(man.stdout).not.toMatch(/guestfish\(1\)/);
    expect(man.stdout).toMatch(/usage: guestsh run /);
    expect(man.stdout).toMatch(/usage: guestsh check /);
  });
  it('--json prints one line per command, a failure as {"error", "command"}', async () => {
    const r = await guestsh(['--json'], 'echo one\n-nosuch-command\n');
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['one', JSON.stringify({ error: "unknown command 'nosuch-command'", command: 'nosuch-command' })]);
  });
  it('stops a script at the first failure with exit 1 unless the command starts with -', async () => {
    const r = await guestsh([], 'echo a\n-nosuch\necho b\nnosuch2\necho c\n');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('a\nb\n');
    expect(r.stderr).toMatch(/\*stdin\*:4: error: unknown command 'nosuch2'/);
  });
  it('answers usage errors with exit 2 and lists -N types', async () => {
    expect((await guestsh(['-N'])).code).toBe(2);
    expect((await guestsh(['-f', 'a', '-f', 'b'])).code).toBe(2);
    const l = await guestsh(['-N', 'list']);
    expect(l.code).toBe(0);
    expect(l.stdout).toMatch(/^fs /m);
  });
  it('help CMD shows the signature from the spec', async () => {
    const r = await guestsh(['help', 'mkfs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('mkfs fstype device [blocksize:N] [features:..] [inode:N] [sectorsize:N] [label:..]');
    expect(r.stdout).toMatch(/fstype\s+string/);
  });
});

describe('the CLI with an appliance', () => {
  it('FileIn "-" reads stdin, FileOut "-" writes stdout, and reopen starts a fresh session', { timeout: scaled(300_000) }, async () => {
    const img = ext4Image(join(tmp, 'fs.img'), 32, { 'etc/hostname': 'cli-test\n' });
    const r = await guestsh(
      ['-a', img, '-m', '/dev/sda', 'upload', '-', '/from-stdin', ':', 'cat', '/from-stdin', ':', 'download', '/etc/hostname', '-',
        ':', 'reopen', ':', 'add', img, 'format:raw', ':', 'run', ':', 'mount', '/dev/sda', '/', ':', 'cat', '/from-stdin'],
      'piped into upload\n',
    );
    // Notices (an appliance build, a snapshot being saved) may appear on a fresh machine; errors may not.
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    // cat prints the content and a newline, as guestfish does.
    expect(r.stdout).toBe('piped into upload\n\ncli-test\npiped into upload\n\n');
  });
});
