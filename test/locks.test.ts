// The writer's lock, recovery's distrust and the reader/writer rule, probed as
// an attacker or an unlucky user would: other names for one file,
// same-instant starts, planted journals and overlays, images that cannot be
// written, a full filesystem, and --ro readers beside a commit. Everything
// here is real qemu-img and real files; only the reader cases boot a VM.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, openSync, readSync, copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Session, UsageError } from '../src/index.js';
import { READER_WAIT_MS, Transaction, recover, stateDir, txFiles, txStatus } from '../src/runtime/session/transaction.js';
import { guestsh, isolatedTmpdir, rawDisk, sha256 } from './helpers.js';
import { scaled } from './slowdown.js';

const tmp = isolatedTmpdir();
afterAll(() => {
  const left = tmp.leftovers();
  tmp.restore();
  expect(left).toEqual([]);
});

const RACE = join(import.meta.dirname, 'fixtures', 'tx-race.mjs');
const RACE_ROUNDS = Number(process.env.GUESTSH_LOCK_ROUNDS ?? 100);
let n = 0;

/** A fresh 32 MiB raw image whose first MiB is 0x11. */
function image(name = `img${n++}.img`, dir = tmp.dir): string {
  const p = rawDisk(join(dir, name), 32);
  qemuIo(p, 'raw', 'write -P 0x11 0 1M');
  return p;
}

function qemuIo(file: string, format: string, cmd: string): void {
  execFileSync('qemu-io', ['-f', format, '-c', cmd, file], { stdio: 'ignore' });
}

function byteAt(file: string, offset: number): number {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    return b[0]!;
  } finally {
    closeSync(fd);
  }
}

function nothingBeside(img: string): boolean {
  const f = txFiles(img);
  return [f.lock, f.overlay, f.journal, `${f.journal}.tmp`].every((p) => !existsSync(p));
}

function journal(img: string, over: Record<string, unknown> = {}): string {
  const f = txFiles(img);
  const st = statSync(f.image);
  return JSON.stringify({ guestsh: 'journal', version: 2, image: f.image, dev: st.dev, ino: st.ino, format: 'raw', ...over });
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UsageError);
  return (e as Error).message;
}

describe('the writer lock belongs to the file, not the name', () => {
  it('refuses a second writer through a symlink, a hard link, a relative path and the same process', async () => {
    const img = image();
    mkdirSync(join(tmp.dir, 'elsewhere'), { recursive: true });
    const alias = join(tmp.dir, 'alias.img');
    symlinkSync(img, alias);
    const hard = join(tmp.dir, 'elsewhere', 'hard.img');
    linkSync(img, hard);
    const names = [img, alias, hard, relative(process.cwd(), img), `${tmp.dir}/./elsewhere/../${img.split('/').pop()}`];
    for (const first of names) {
      const tx = await Transaction.begin(first, 'raw');
      for (const second of names) {
        expect(await refusal(Transaction.begin(second, 'raw'))).toBe(
          `'${second}' is open for writing by guestsh (pid ${process.pid}); wait for it to finish or open the image with --ro`,
        );
        expect((await txStatus(second)).writerPid).toBe(process.pid);
      }
      // Another process sees the same writer through every name.
      const st = await guestsh(['status', '--json', hard]);
      expect(JSON.parse(st.stdout).writerPid).toBe(process.pid);
      await tx.discard();
      expect((await txStatus(first)).writerPid).toBe(null);
    }
    // Symlinked and relative names keep their files beside the real path.
    expect(txFiles(alias).overlay).toBe(`${img}.guestsh-overlay`);
    expect(nothingBeside(img)).toBe(true);
  });

  it(`never has two owners when writers start in the same instant (${RACE_ROUNDS} rounds), and loses no commit`, async () => {
    const img = image();
    // Long enough for a round's commit on this machine, as measured for the suite.
    const period = scaled(200);
    const start = Date.now() + 1500;
    const contenders = [0x41, 0x42].map(
      (tag) =>
        new Promise<string>((resolve, reject) =>
          execFile('node', [RACE, img, String(tag), String(start), String(period), '50', String(RACE_ROUNDS)], { timeout: scaled(60_000 + RACE_ROUNDS * period * 4) }, (err, out, errOut) =>
            err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
          ),
        ),
    );
    const outputs = await Promise.all(contenders);
    type Own = { tag: number; got: number; last: number };
    const owners = new Map<number, Own[]>();
    let refused = 0;
    const late = new Set<number>();
    outputs.forEach((out, i) => {
      for (const line of out.trim().split('\n')) {
        const [r, what, got, last] = line.split(' ');
        if (what === 'refused') refused++;
        else if (what === 'late') late.add(Number(r));
        else owners.set(Number(r), [...(owners.get(Number(r)) ?? []), { tag: [0x41, 0x42][i]!, got: Number(got), last: Number(last) }]);
      }
    });
    let single = 0;
    for (let r = 0; r < RACE_ROUNDS; r++) {
      const own = owners.get(r) ?? [];
      // Someone always gets it: a refusal means another held it. A round a
      // contender was late for may have none: the late one still held the last.
      if (!late.has(r)) expect(own.length, `round ${r}`).toBeGreaterThan(0);
      if (own.length === 0) continue;
      if (own.length === 1) single++;
      if (own.length === 2) {
        const [a, b] = own.sort((x, y) => x.got - y.got) as [Own, Own];
        expect(a.last, `round ${r}: both held the lock`).toBeLessThan(b.got);
      }
      // The last committer's byte is what the image holds: no commit lost, none applied twice over a newer one.
      const lastOwner = own.sort((x, y) => x.last - y.last).at(-1)!;
      expect(byteAt(img, r * 4096), `round ${r}`).toBe(lastOwner.tag);
    }
    console.log(`lock race: ${RACE_ROUNDS} rounds, ${single} with one owner and one refusal, ${RACE_ROUNDS - single - late.size} taken in turn, ${late.size} with a contender late, 0 with two owners at once (${refused} refusals)`);
    // The race was run, not skipped: rounds were contested and refused.
    expect(single, 'rounds with one owner and one refusal').toBeGreaterThan(0);
    expect(nothingBeside(img)).toBe(true);
  });

  it("recover never takes the lock from a live writer, nor deletes the writer's files", async () => {
    const img = image();
    const tx = await Transaction.begin(img, 'raw');
    qemuIo(tx.files.overlay, 'qcow2', 'write -P 0x77 0 4096');
    const attempts = await Promise.all(Array.from({ length: 100 }, () => recover(img).then(() => 'recovered', (e: Error) => e.message)));
    expect(new Set(attempts)).toEqual(new Set([`'${img}' is open for writing by guestsh (pid ${process.pid}); wait for it to finish or open the image with --ro`]));
    const cli = await guestsh(['recover', img]);
    expect(cli.code).not.toBe(0);
    expect(existsSync(tx.files.overlay)).toBe(true);
    await tx.commit();
    expect(byteAt(img, 0)).toBe(0x77);
    expect(nothingBeside(img)).toBe(true);
  });

  it('a lock note naming a live pid of another program (a recycled pid) does not block a writer', async () => {
    const img = image();
    const f = txFiles(img);
    writeFileSync(f.lock, JSON.stringify({ host: 'elsewhere', pid: 1, started: 1, bootId: 'x' }));
    expect((await txStatus(img)).writerPid).toBe(null);
    writeFileSync(f.lock, '1\n'); // the old format: a bare pid
    const tx = await Transaction.begin(img, 'raw');
    expect(JSON.parse(readFileSync(f.lock, 'utf8')).pid).toBe(process.pid);
    await tx.discard();
    expect(nothingBeside(img)).toBe(true);
  });
});

describe('recovery trusts nothing it did not write', () => {
  /** A host file a planted overlay aims at, and its hash. */
  async function victim(): Promise<{ path: string; hash: string }> {
    const path = rawDisk(join(tmp.dir, `victim${n++}.img`), 4);
    qemuIo(path, 'raw', 'write -P 0x5a 0 4M');
    return { path, hash: await sha256(path) };
  }

  /** A qcow2 holding 0xee in its first MiB, over `backing`, with extra -o options. */
  function planted(path: string, backing: string | null, options: string[] = []): string {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', ...(backing ? ['-b', backing, '-F', 'raw'] : []), ...options, path, '32M']);
    qemuIo(path, 'qcow2', 'write -P 0xee 0 1M');
    chmodSync(path, 0o600);
    return path;
  }

  async function expectRefused(img: string, what: RegExp): Promise<void> {
    const before = await sha256(img);
    const msg = await refusal(recover(img));
    expect(msg).toMatch(what);
    expect(msg).toMatch(/guestsh will not act on it/);
    // A read-write open refuses the same way, before any appliance.
    expect(await refusal(Transaction.begin(img, 'raw'))).toBe(msg);
    const cli = await guestsh(['-a', img, 'run']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    expect(await sha256(img)).toBe(before);
    // The way out is explicit, and touches only guestsh's own files.
    expect(await recover(img, 'abandon')).toBe('abandoned-interrupted-commit');
    expect(await sha256(img)).toBe(before);
    expect(nothingBeside(img)).toBe(true);
  }

  it('ignores the overlay path a planted journal names (the old format), and refuses an overlay backed by another file', async () => {
    const v = await victim();
    const img = image();
    const f = txFiles(img);
    const evil = planted(join(tmp.dir, 'evil.qcow2'), v.path);
    writeFileSync(f.journal, JSON.stringify({ image: img, overlay: evil, format: 'raw' }));
    copyFileSync(evil, f.overlay);
    await expectRefused(img, /guestsh-journal' is not what guestsh wrote .*not in the format guestsh writes/);
    // With a well-formed journal, the overlay's backing file is checked.
    writeFileSync(f.journal, journal(img));
    copyFileSync(evil, f.overlay);
    chmodSync(f.overlay, 0o600);
    await expectRefused(img, new RegExp(`guestsh-overlay' is not what guestsh wrote .*its backing file is '${v.path}', not the image`));
    expect(await sha256(v.path)).toBe(v.hash);
  });

  it("refuses an overlay with an external data file, and one that is another user's or writable by others", async () => {
    const v = await victim();
    const img = image();
    const f = txFiles(img);
    writeFileSync(f.journal, journal(img));
    planted(f.overlay, img, ['-o', `data_file=${v.path},data_file_raw=off`]);
    // Planting wrote the overlay's data into the victim; from here on, nothing may.
    const planted0 = await sha256(v.path);
    await expectRefused(img, /has an external data file/);
    expect(await sha256(v.path)).toBe(planted0);

    writeFileSync(f.journal, journal(img));
    planted(f.overlay, img);
    chmodSync(f.overlay, 0o664);
    await expectRefused(img, /others can write it/);
    if (process.geteuid?.() === 0) {
      writeFileSync(f.journal, journal(img));
      planted(f.overlay, img);
      chownSync(f.overlay, 65534, 65534);
      await expectRefused(img, /belongs to another user/);
    }
  });

  it('refuses a journal that names another image, or an image replaced since', async () => {
    const img = image();
    const other = image();
    const f = txFiles(img);
    writeFileSync(f.journal, journal(other));
    planted(f.overlay, img);
    await expectRefused(img, new RegExp(`names another image \\('${other}'\\)`));
    writeFileSync(f.journal, journal(img, { ino: statSync(img).ino + 1 }));
    planted(f.overlay, img);
    await expectRefused(img, /the image file was replaced since it was written/);
  });

  it('completes a genuine interrupted merge, and a --ro reader refuses the half-merged image until then', async () => {
    const img = image();
    const f = txFiles(img);
    const tx = await Transaction.begin(img, 'raw');
    qemuIo(f.overlay, 'qcow2', 'write -P 0x33 0 2M');
    await tx.discard();
    // The state a merge cut short leaves: its journal, the overlay, half the data in the image.
    planted(f.overlay, img);
    qemuIo(f.overlay, 'qcow2', 'write -P 0x33 0 2M');
    writeFileSync(f.journal, journal(img));
    qemuIo(img, 'raw', 'write -P 0x33 0 1M');
    const reader = new Session();
    const msg = await refusal(reader.addDrive(img, { format: 'raw', readonly: true }));
    expect(msg).toBe(`'${img}' has an interrupted commit: it reads half-merged until 'guestsh recover ${img}' completes it; run that, then open it again`);
    await reader.close();
    const cli = await guestsh(['--ro', '-a', img, 'run']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr.trim()).toContain('has an interrupted commit');
    expect(await recover(img)).toBe('rolled-forward');
    expect([byteAt(img, 0), byteAt(img, 1.5 * 2 ** 20)]).toEqual([0x33, 0x33]);
    expect(nothingBeside(img)).toBe(true);
  });

  it('status and recover of something that is not an image are errors', async () => {
    for (const [what, args] of [
      ['does not exist', [join(tmp.dir, 'missing.img')]],
      ['is a directory, not a disk image', [tmp.dir]],
    ] as const) {
      for (const verb of ['status', 'recover']) {
        const r = await guestsh([verb, ...args]);
        expect(r.code, `${verb} ${args[0]}`).not.toBe(0);
        expect(r.stderr).toContain(what);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
    }
  });
});

const root = process.geteuid?.() === 0;
if (!root) console.warn('locks.test.ts: skipping the immutable-image and full-filesystem cases: they need root (chattr +i, mount -t tmpfs)');

describe.skipIf(!root)('images that cannot be written, and a full filesystem', () => {
  it('refuses an immutable image before any appliance, leaving nothing behind; an immutable directory keeps the transaction in the state directory', async () => {
    const img = image();
    execFileSync('chattr', ['+i', img]);
    try {
      expect(await refusal(Transaction.begin(img, 'raw'))).toBe(`'${img}' cannot be written (EPERM: read-only, immutable or not yours); open it with --ro to read it`);
      const cli = await guestsh(['-a', img, 'run', ':', 'list-devices']);
      expect(cli.code).not.toBe(0);
      expect(cli.stderr.trim().split('\n')).toEqual([`guestsh: error: '${img}' cannot be written (EPERM: read-only, immutable or not yours); open it with --ro to read it`]);
    } finally {
      execFileSync('chattr', ['-i', img]);
    }
    expect(nothingBeside(img)).toBe(true);
    const dir = join(tmp.dir, 'frozen');
    mkdirSync(dir);
    const inside = image('inside.img', dir);
    execFileSync('chattr', ['+i', dir]);
    const saved = process.env.XDG_STATE_HOME;
    process.env.XDG_STATE_HOME = join(tmp.dir, 'state');
    try {
      const tx = await Transaction.begin(inside, 'raw');
      expect(tx.files.place).toBe('state');
      expect(tx.files.overlay.startsWith(`${stateDir()}/inside.img-`)).toBe(true);
      expect(existsSync(tx.files.overlay)).toBe(true);
      await tx.discard();
      expect(readdirSync(stateDir())).toEqual([]);
    } finally {
      execFileSync('chattr', ['-i', dir]);
      if (saved === undefined) delete process.env.XDG_STATE_HOME;
      else process.env.XDG_STATE_HOME = saved;
    }
    expect(nothingBeside(inside)).toBe(true);
  });

  it('an image made unwritable during the session: the commit refuses before writing and can be retried', async () => {
    const img = image();
    const before = await sha256(img);
    const tx = await Transaction.begin(img, 'raw');
    qemuIo(tx.files.overlay, 'qcow2', 'write -P 0x44 0 4096');
    execFileSync('chattr', ['+i', img]);
    try {
      expect(await refusal(tx.commit())).toBe(`cannot commit into '${img}': it cannot be written (EPERM); the image is untouched`);
      expect(existsSync(tx.files.journal)).toBe(false);
      expect(await sha256(img)).toBe(before);
      expect(tx.open).toBe(true);
    } finally {
      execFileSync('chattr', ['-i', img]);
    }
    await tx.commit();
    expect(byteAt(img, 0)).toBe(0x44);
    expect(nothingBeside(img)).toBe(true);
  });

  it('checks the space a merge needs before writing, counting only what a raw image has not allocated yet', async () => {
    const mnt = join(tmp.dir, 'small');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', mnt]);
    try {
      // Sparse: merging 18 MiB of overlay data allocates 18 MiB; about 14 MiB are free.
      const sparse = rawDisk(join(mnt, 'sparse.img'), 64);
      const before = await sha256(sparse);
      const tx = await Transaction.begin(sparse, 'raw');
      qemuIo(tx.files.overlay, 'qcow2', 'write -P 0x66 0 18M');
      expect(await refusal(tx.commit())).toMatch(
        new RegExp(`^not enough space to commit into '${sparse}': the merge may need 18\\.0 MiB and its filesystem has 1[0-9]\\.[0-9] MiB free; the image is untouched: free some space and commit again$`),
      );
      expect(existsSync(tx.files.journal)).toBe(false);
      expect(await sha256(sparse)).toBe(before);
      expect(tx.open).toBe(true);
      await tx.discard();
      execFileSync('rm', [sparse]);
      // Fully allocated: the same merge rewrites blocks it already has, so it fits.
      const full = join(mnt, 'full.img');
      execFileSync('dd', ['if=/dev/zero', `of=${full}`, 'bs=1M', 'count=20', 'status=none']);
      const tx2 = await Transaction.begin(full, 'raw');
      qemuIo(tx2.files.overlay, 'qcow2', 'write -P 0x67 0 8M');
      await tx2.commit();
      expect(byteAt(full, 7 * 2 ** 20)).toBe(0x67);
      expect(nothingBeside(full)).toBe(true);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('a --ro reader beside a writer', () => {
  let reader: Session | null = null;
  afterAll(async () => {
    await reader?.close();
  });

  async function session(img: string, readonly: boolean): Promise<Session> {
    const s = new Session();
    await s.addDrive(img, { format: 'raw', readonly });
    await s.launch();
    return s;
  }

  it(`a commit waits for a reader to close (at most ${READER_WAIT_MS / 1000} s), and fails before writing if it stays; shutdown() retries it`, { timeout: scaled(300_000) }, async () => {
    const img = image();
    const writer = await session(img, false);
    try {
      await writer.g.pwriteDevice('/dev/sda', Buffer.alloc(4096, 0x55), 0);
      reader = await session(img, true);
      const before = await sha256(img);
      const msg = await refusal(writer.shutdown());
      expect(msg).toBe(`cannot commit into '${img}': another process (a guestsh --ro reader or a VM) has it open; the image is untouched: close the reader and commit again`);
      expect(await sha256(img)).toBe(before);
      // Nothing is left for a later open to "complete".
      expect(existsSync(txFiles(img).journal)).toBe(false);
      // The reader goes away while the retried commit waits: it completes.
      const committing = writer.shutdown();
      await sleep(500);
      await reader.close();
      reader = null;
      await committing;
      expect(byteAt(img, 0)).toBe(0x55);
    } finally {
      await writer.close();
    }
    expect(nothingBeside(img)).toBe(true);
  });
});
