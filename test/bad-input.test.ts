// The bad-input corpus: what strangers pass on the command line, each case
// run as a real guestsh process in a directory of its own. Every one must end
// with a non-zero exit, one line on stderr saying what is wrong, no hang, and
// nothing left behind: no transaction files beside the images, nothing in
// TMPDIR, the images byte-identical. Most fail before any appliance starts;
// the few that need one resume the saved appliance.
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ext4Image, isolatedTmpdir, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => tmp.restore());

/** Builds the fixtures every case may name, in `dir`. */
function fixtures(dir: string): void {
  ext4Image(join(dir, 'good.img'), 16, { 'a.txt': 'a\n' });
  mkdirSync(join(dir, 'adir'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  writeFileSync(join(dir, 'garbage.qcow2'), Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(508, 0xff)]));
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'whole.qcow2'), '16M']);
  const whole = readFileSync(join(dir, 'whole.qcow2'));
  writeFileSync(join(dir, 'trunc.qcow2'), whole.subarray(0, 72));
  symlinkSync('loop.img', join(dir, 'loop.img'));
  copyFileSync(join(dir, 'good.img'), join(dir, '-dash.img'));
  writeFileSync(join(dir, 'script.gfs'), 'run\nlist-devices\nno-such-command\n');
  writeFileSync(join(dir, 'syntax.gfs.ts'), 'export default async function (s) {\n  let = ;\n}\n');
  writeFileSync(join(dir, 'import.gfs.ts'), "import { nothing } from './not-there.js';\nexport default async function () { nothing(); }\n");
  writeFileSync(join(dir, 'ok.gfs.ts'), 'export default async function () {}\n');
  writeFileSync(join(dir, 'typo.gfs.ts'), "export default async ({ g }) => { await g.mkdri('/x'); };\n");
  mkdirSync(join(dir, 'recipe-dir.gfs.ts'));
  // A journal planted beside an image, naming a victim.
  copyFileSync(join(dir, 'good.img'), join(dir, 'planted.img'));
  writeFileSync(join(dir, 'planted.img.guestsh-journal'), JSON.stringify({ image: join(dir, 'planted.img'), overlay: '/etc/passwd', format: 'raw' }));
  // A name with a newline in it.
  const fd = openSync(join(dir, 'nl\nname.img'), 'w');
  writeSync(fd, 'x');
  closeSync(fd);
}

interface Case {
  name: string;
  args: string[];
  /** What the one line must say. */
  says: RegExp;
  /** The case boots (resumes) the appliance before failing. */
  vm?: true;
}

const CASES: Case[] = [
  // The command line itself
  { name: 'unknown option', args: ['--bogus'], says: /unknown option '--bogus'/ },
  { name: 'unknown short option', args: ['-Z'], says: /unknown option '-Z'/ },
  { name: '-a without a value', args: ['-a'], says: /-a.*needs a value|needs an argument|IMAGE/ },
  { name: '-m without a value', args: ['-a', 'good.img', '-m'], says: /-m/ },
  { name: '-m with an empty device', args: ['-a', 'good.img', '-m', ':/'], says: /no device given/ },
  { name: 'a bundle with an unknown letter', args: ['-iZ', '-a', 'good.img'], says: /unknown option/ },
  { name: '-N with an unknown type', args: ['-N', 'bogus'], says: /bogus/ },
  { name: '-f naming a missing script', args: ['-f', 'missing.gfs'], says: /missing\.gfs/ },
  { name: 'a verb option on the shell', args: ['--abandon', '-a', 'good.img'], says: /--abandon/ },
  // Shell commands, checked before the appliance boots
  { name: 'an unknown command', args: ['-a', 'good.img', 'run', ':', 'no-such-command'], says: /no-such-command/ },
  { name: 'a command with too few arguments', args: ['-a', 'good.img', 'run', ':', 'mount'], says: /mount/ },
  { name: 'a command with too many arguments', args: ['-a', 'good.img', 'run', ':', 'list-devices', 'x'], says: /list-devices/ },
  { name: 'a non-number where a number goes', args: ['-a', 'good.img', 'run', ':', 'resize2fs-size', '/dev/sda', 'big'], says: /big/ },
  { name: 'a malformed GUID', args: ['-a', 'good.img', 'run', ':', 'part-set-gpt-guid', '/dev/sda', '1', 'not-a-guid'], says: /GUID|not-a-guid/ },
  { name: 'a bad boolean', args: ['-a', 'good.img', 'run', ':', 'mkfs-opts', 'ext4', '/dev/sda', 'nocheck:maybe'], says: /./ },
  { name: 'an unknown optional argument', args: ['-a', 'good.img', 'run', ':', 'mkfs', 'ext4', '/dev/sda', 'nosuch:1'], says: /nosuch/ },
  { name: 'a script with an unknown command', args: ['-a', 'good.img', '-f', 'script.gfs'], says: /no-such-command/ },
  // Images
  { name: 'a missing image', args: ['-a', 'missing.img', 'run'], says: /'missing\.img' does not exist/ },
  { name: 'a missing image, read-only', args: ['--ro', '-a', 'missing.img', 'run'], says: /'missing\.img' does not exist/ },
  { name: 'a directory as image', args: ['-a', 'adir', 'run'], says: /adir/ },
  { name: 'a FIFO as image', args: ['-a', 'fifo', 'run'], says: /fifo/ },
  { name: 'a FIFO as image, read-only', args: ['--ro', '-a', 'fifo', 'run'], says: /fifo/ },
  { name: 'a symlink loop as image', args: ['-a', 'loop.img', 'run'], says: /loop\.img/ },
  { name: 'a qcow2 with a garbage header', args: ['-a', 'garbage.qcow2', 'run'], says: /garbage\.qcow2/ },
  { name: 'a truncated qcow2', args: ['-a', 'trunc.qcow2', 'run'], says: /trunc\.qcow2/ },
  { name: 'a raw image forced as qcow2', args: ['--format=qcow2', '-a', 'good.img', 'run'], says: /good\.img/ },
  { name: 'an unknown format', args: ['--format=zzz', '-a', 'good.img', 'run'], says: /zzz/ },
  { name: 'a name with a newline', args: ['--format=qcow2', '-a', 'nl\nname.img', 'run'], says: /nl\\nname\.img|nl.name\.img/ },
  { name: 'a name longer than the system allows', args: ['-a', `${'x'.repeat(300)}.img`, 'run'], says: /x{20}/ },
  { name: 'a name starting with a dash, forced as qcow2', args: ['--format=qcow2', '-a', '-dash.img', 'run'], says: /-dash\.img/ },
  { name: 'a planted journal', args: ['-a', 'planted.img', 'run'], says: /guestsh will not act on it/ },
  { name: 'a planted journal, read-only', args: ['--ro', '-a', 'planted.img', 'run'], says: /interrupted commit/ },
  // The verbs
  { name: 'status without an image', args: ['status'], says: /usage: guestsh status IMAGE/ },
  { name: 'status of two images', args: ['status', 'good.img', 'good.img'], says: /usage: guestsh status IMAGE/ },
  { name: 'status of a missing image', args: ['status', 'missing.img'], says: /does not exist/ },
  { name: 'status of a directory', args: ['status', 'adir'], says: /is a directory/ },
  { name: 'status of a FIFO', args: ['status', 'fifo'], says: /not a disk image/ },
  { name: 'recover without an image', args: ['recover'], says: /usage: guestsh recover IMAGE/ },
  { name: 'recover of a missing image', args: ['recover', 'missing.img'], says: /does not exist/ },
  { name: 'recover of a directory', args: ['recover', 'adir'], says: /is a directory/ },
  { name: 'recover of a FIFO', args: ['recover', 'fifo'], says: /not a disk image/ },
  { name: 'recover of a planted journal', args: ['recover', 'planted.img'], says: /guestsh will not act on it/ },
  { name: 'recover with a shell option', args: ['recover', '-i', 'good.img'], says: /-i/ },
  { name: 'run without a recipe', args: ['run'], says: /name a recipe/ },
  { name: 'run without an image', args: ['run', 'ok.gfs.ts'], says: /add an image with -a IMAGE/ },
  { name: 'run of two recipes', args: ['run', 'ok.gfs.ts', 'ok.gfs.ts', '-a', 'good.img'], says: /one recipe at a time/ },
  { name: 'run of a missing recipe', args: ['run', 'missing.gfs.ts', '-a', 'good.img'], says: /missing\.gfs\.ts/ },
  { name: 'run of a directory as recipe', args: ['run', 'recipe-dir.gfs.ts', '-a', 'good.img'], says: /recipe-dir\.gfs\.ts/ },
  { name: 'run of an unknown ready recipe', args: ['run', 'guestsh/nosuch', '-a', 'good.img'], says: /nosuch/ },
  { name: 'run with a negative timeout', args: ['run', 'ok.gfs.ts', '-a', 'good.img', '--timeout', '-5'], says: /--timeout/ },
  { name: 'run with a zero timeout', args: ['run', 'ok.gfs.ts', '-a', 'good.img', '--timeout', '0'], says: /--timeout/ },
  { name: 'run with a word as memory', args: ['run', 'ok.gfs.ts', '-a', 'good.img', '--memory', 'lots'], says: /--memory/ },
  { name: 'run with a parameter without =', args: ['run', 'ok.gfs.ts', '-a', 'good.img', '--param', 'novalue'], says: /--param/ },
  { name: 'run of a missing image', args: ['run', 'ok.gfs.ts', '-a', 'missing.img'], says: /does not exist/ },
  { name: 'run of a FIFO image', args: ['run', 'ok.gfs.ts', '-a', 'fifo'], says: /fifo/ },
  { name: 'run with a shell-only option', args: ['run', 'ok.gfs.ts', '-a', 'good.img', '-x'], says: /-x/ },
  { name: 'run with a malformed -m', args: ['run', 'ok.gfs.ts', '-a', 'good.img', '-m', ':'], says: /no device given/ },
  { name: 'a libvirt domain (-d)', args: ['-d', 'myvm'], says: /libvirt domains and connections are not supported .*-a/ },
  { name: 'run with a libvirt domain', args: ['run', 'ok.gfs.ts', '--domain=myvm'], says: /libvirt domains and connections are not supported/ },
  { name: 'run of a ready recipe with a mistyped param', args: ['run', 'guestsh/customize', '-a', 'good.img', '--param', 'hostnme=x'], says: /guestsh\/customize has no param 'hostnme': did you mean hostname\?/ },
  { name: 'run of a ready recipe with a param out of its values', args: ['run', 'guestsh/hardening', '-a', 'good.img', '--param', 'permit-root-login=yes'], says: /--param permit-root-login=yes: not one of no, prohibit-password/ },
  { name: 'check without a recipe', args: ['check'], says: /usage: guestsh check RECIPE/ },
  { name: 'check of a missing recipe', args: ['check', 'missing.gfs.ts'], says: /missing\.gfs\.ts: no such file/ },
  { name: 'check of a recipe with a type error', args: ['check', 'typo.gfs.ts'], says: /typo\.gfs\.ts:1:\d+: TS2551/ },
  { name: 'run of a recipe with a type error', args: ['run', 'typo.gfs.ts', '-a', 'good.img'], says: /typo\.gfs\.ts:1:\d+: TS2551: .*nothing was launched/ },
  { name: 'init-recipe without a name', args: ['init-recipe'], says: /usage: guestsh init-recipe NAME/ },
  { name: 'init-recipe with too many words', args: ['init-recipe', 'a', 'b', 'c'], says: /usage: guestsh init-recipe NAME/ },
  // Past the launch: the appliance answers
  { name: '-i on a disk without an operating system', args: ['-a', 'good.img', '-i', 'run'], says: /no operating system was found/, vm: true },
  { name: '-m of a device that is not there', args: ['-a', 'good.img', '-m', '/dev/sdz1', 'run'], says: /sdz1/, vm: true },
  { name: 'a command failing in the guest', args: ['-a', 'good.img', 'run', ':', 'mount', '/dev/sda', '/', ':', 'cat', '/nope'], says: /\/nope: No such file or directory/, vm: true },
];

describe(`bad input: ${CASES.length} cases`, () => {
  let base: string;
  beforeAll(() => {
    base = join(tmp.dir, 'fixtures');
    mkdirSync(base);
    fixtures(base);
  });

  /** Runs one case in a copy of the fixtures with its own TMPDIR; returns what it left. */
  async function runCase(c: Case): Promise<{ code: number | string; stderr: string; left: string[]; changed: string[] }> {
    const dir = mkdtempSync(join(tmp.dir, 'case-'));
    execFileSync('cp', ['-a', `${base}/.`, dir]);
    const tmpdir = join(dir, '.tmp');
    mkdirSync(tmpdir);
    const hashes = new Map<string, string>();
    for (const f of ['good.img', 'planted.img', '-dash.img']) hashes.set(f, await sha256(join(dir, f)));
    const before = new Set(readdirSync(dir));
    const r = await new Promise<{ code: number | string; stderr: string }>((resolve) => {
      // A hang guard, not a timing: the slowest case resumes the appliance once.
      execFile('node', [CLI, ...c.args], { cwd: dir, timeout: scaled(180_000), env: { ...process.env, TMPDIR: tmpdir } }, (err, _out, stderr) => {
        const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
        resolve({ code: e ? (e.killed ? 'hung' : (e.code ?? 1)) : 0, stderr });
      });
    });
    const left = [...readdirSync(dir).filter((f) => !before.has(f)), ...readdirSync(tmpdir).map((f) => `TMPDIR/${f}`)];
    const changed: string[] = [];
    for (const [f, h] of hashes) if ((await sha256(join(dir, f))) !== h) changed.push(f);
    rmSync(dir, { recursive: true, force: true });
    return { ...r, left, changed };
  }

  const tally = { cases: 0, held: 0 };
  afterAll(() => console.log(`bad-input corpus: ${tally.cases} cases, ${tally.held} gave one line, a non-zero exit, no hang and nothing left behind`));

  for (const c of CASES) {
    it(c.name, { timeout: scaled(240_000) }, async () => {
      tally.cases++;
      const r = await runCase(c);
      expect(r.code, r.stderr).not.toBe('hung');
      expect(r.code, r.stderr).not.toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^guestsh: /);
      expect(lines[0]).toMatch(c.says);
      expect(r.left).toEqual([]);
      expect(r.changed).toEqual([]);
      tally.held++;
    });
  }
});
