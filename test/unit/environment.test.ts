// A new session applies the LIBGUESTFS_* variables of the environment it is
// given, as libguestfs's handle creation does; a value guestsh cannot honour
// is a one-line notice naming the variable, and the others still apply.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheRoot } from '../../src/runtime/cache.js';
import { defaultSettings } from '../../src/runtime/session/settings.js';
import { Session } from '../../src/runtime/session/session.js';

const sessions: Session[] = [];

/** A session made from `env`, and the notices it gave (they come on the next tick). */
async function created(env: Record<string, string>): Promise<{ s: Session; notices: string[] }> {
  const s = new Session({ env });
  sessions.push(s);
  const notices: string[] = [];
  s.on('notice', (l) => notices.push(l));
  await new Promise((r) => process.nextTick(r));
  return { s, notices };
}

afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close();
});

const QEMU_ON_PATH = execFileSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).trim();

describe('the environment a new session applies', () => {
  it('none: the defaults, no notices', async () => {
    const { s, notices } = await created({});
    expect(s.settings).toEqual(defaultSettings());
    expect(notices).toEqual([]);
  });

  it('LIBGUESTFS_BACKEND_SETTINGS: split at every colon; empty is none; force_tcg reaches the settings launch reads', async () => {
    expect((await created({ LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' })).s.settings.backendSettings).toEqual(['force_tcg']);
    const { s } = await created({ LIBGUESTFS_BACKEND_SETTINGS: 'a=1::force_tcg' });
    expect(await s.g.getBackendSettings()).toEqual(['a=1', '', 'force_tcg']);
    expect(await s.g.getBackendSetting('a')).toBe('1');
    expect((await created({ LIBGUESTFS_BACKEND_SETTINGS: '' })).s.settings.backendSettings).toEqual([]);
  });

  it('LIBGUESTFS_TRACE and LIBGUESTFS_DEBUG: libguestfs booleans; another value is a notice', async () => {
    const on = (await created({ LIBGUESTFS_TRACE: 'Yes', LIBGUESTFS_DEBUG: '1' })).s;
    expect([on.settings.trace, on.settings.verbose]).toEqual([true, true]);
    const off = (await created({ LIBGUESTFS_TRACE: 'off', LIBGUESTFS_DEBUG: 'F' })).s;
    expect([off.settings.trace, off.settings.verbose]).toEqual([false, false]);
    const { s, notices } = await created({ LIBGUESTFS_TRACE: '', LIBGUESTFS_DEBUG: 'maybe' });
    expect([s.settings.trace, s.settings.verbose]).toEqual([false, false]);
    expect(notices).toEqual([
      'LIBGUESTFS_TRACE ignored: LIBGUESTFS_TRACE=: non-boolean value',
      'LIBGUESTFS_DEBUG ignored: LIBGUESTFS_DEBUG=maybe: non-boolean value',
    ]);
  });

  it('LIBGUESTFS_MEMSIZE: the leading integer; non-numeric or below 256 is a notice and keeps the default', async () => {
    expect((await created({ LIBGUESTFS_MEMSIZE: ' 900M' })).s.settings.memsize).toBe(900);
    const bad = await created({ LIBGUESTFS_MEMSIZE: 'lots' });
    expect(bad.s.settings.memsize).toBe(defaultSettings().memsize);
    expect(bad.notices).toEqual(['LIBGUESTFS_MEMSIZE ignored: non-numeric value for LIBGUESTFS_MEMSIZE']);
    const small = await created({ LIBGUESTFS_MEMSIZE: '100' });
    expect(small.s.settings.memsize).toBe(defaultSettings().memsize);
    expect(small.notices).toEqual(['LIBGUESTFS_MEMSIZE ignored: set_memsize: too small value for memsize (must be at least 256)']);
    expect((await created({ LIBGUESTFS_MEMSIZE: '' })).notices).toEqual([]);
  });

  it('LIBGUESTFS_HV (before LIBGUESTFS_QEMU): the qemu on $PATH is taken; another is a notice', async () => {
    const s = (await created({})).s;
    expect(await s.g.getHv()).toBe(QEMU_ON_PATH);
    expect(await s.g.getQemu()).toBe(QEMU_ON_PATH);
    expect((await created({ LIBGUESTFS_HV: QEMU_ON_PATH })).notices).toEqual([]);
    expect((await created({ LIBGUESTFS_QEMU: 'qemu-system-x86_64' })).notices).toEqual([]);
    const other = await created({ LIBGUESTFS_HV: '/usr/libexec/qemu-kvm', LIBGUESTFS_QEMU: QEMU_ON_PATH });
    expect(other.notices).toEqual([
      `LIBGUESTFS_HV ignored: set_hv: not supported in guestsh: guestsh always runs the qemu-system-x86_64 found on $PATH (${QEMU_ON_PATH}); another hypervisor binary cannot be chosen`,
    ]);
    expect((await created({ LIBGUESTFS_HV: '', LIBGUESTFS_QEMU: '/opt/qemu' })).notices).toEqual([
      `LIBGUESTFS_QEMU ignored: set_hv: not supported in guestsh: guestsh always runs the qemu-system-x86_64 found on $PATH (${QEMU_ON_PATH}); another hypervisor binary cannot be chosen`,
    ]);
  });

  it('LIBGUESTFS_BACKEND (before LIBGUESTFS_ATTACH_METHOD): direct and appliance are taken; libvirt is a notice', async () => {
    expect((await created({ LIBGUESTFS_BACKEND: 'direct' })).notices).toEqual([]);
    expect((await created({ LIBGUESTFS_ATTACH_METHOD: 'appliance' })).notices).toEqual([]);
    const { notices } = await created({ LIBGUESTFS_BACKEND: 'libvirt', LIBGUESTFS_ATTACH_METHOD: 'direct' });
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^LIBGUESTFS_BACKEND ignored: set_backend: not supported in guestsh: .*libvirt/);
    expect((await created({ LIBGUESTFS_ATTACH_METHOD: 'uml' })).notices).toEqual([
      'LIBGUESTFS_ATTACH_METHOD ignored: set_backend: invalid backend: uml (guestsh has only the "direct" backend)',
    ]);
  });

  it('LIBGUESTFS_PATH, LIBGUESTFS_APPEND: what guestsh already uses is taken, anything else is a notice naming what to set instead', async () => {
    expect((await created({ LIBGUESTFS_APPEND: '', LIBGUESTFS_PATH: '' })).notices).toEqual([]);
    const { notices } = await created({
      LIBGUESTFS_PATH: '/usr/lib/guestfs',
      LIBGUESTFS_APPEND: 'console=ttyS0',
      LIBGUESTFS_TMPDIR: '/no/such/tmp',
      LIBGUESTFS_CACHEDIR: '/no/such/cache',
    });
    // In libguestfs's order.
    expect(notices.map((l) => l.split(' ')[0])).toEqual(['LIBGUESTFS_TMPDIR', 'LIBGUESTFS_CACHEDIR', 'LIBGUESTFS_PATH', 'LIBGUESTFS_APPEND']);
    expect(notices[0]).toMatch(/set_tmpdir: \/no\/such\/tmp: ENOENT: the directory must exist/);
    expect(notices[1]).toMatch(/set_cachedir: \/no\/such\/cache: ENOENT/);
    expect(notices[2]).toMatch(/set_path: not supported in guestsh: .*GUESTSH_CACHE/);
    expect(notices[3]).toMatch(/set_append: not supported in guestsh/);
  });

  it('LIBGUESTFS_TMPDIR moves the run directory; LIBGUESTFS_CACHEDIR is kept and reported (the appliance stays shared), as the tests of libguestfs set both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guestsh-envtmp-'));
    try {
      const { s, notices } = await created({ LIBGUESTFS_TMPDIR: dir, LIBGUESTFS_CACHEDIR: dir });
      expect(notices).toEqual([]);
      expect(await s.g.getTmpdir()).toBe(realpathSync(dir));
      expect(await s.g.getCachedir()).toBe(realpathSync(dir));
      expect(s.settings.tmpdir).toBe(realpathSync(dir));
      await s.g.setTmpdir(null);
      await s.g.setCachedir(null);
      expect(await s.g.getTmpdir()).toBe(tmpdir());
      expect(await s.g.getCachedir()).toBe(cacheRoot());
      writeFileSync(join(dir, 'f'), '');
      await expect(s.g.setTmpdir(join(dir, 'f'))).rejects.toThrow(/is not a directory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a refused variable does not stop the ones after it (libguestfs would, but it takes values guestsh refuses)', async () => {
    const { s, notices } = await created({ LIBGUESTFS_PATH: '/usr/lib/guestfs', LIBGUESTFS_MEMSIZE: '777', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' });
    expect(notices).toHaveLength(1);
    expect(s.settings.memsize).toBe(777);
    expect(s.settings.backendSettings).toEqual(['force_tcg']);
  });

  it('parse_environment_list throws at the first refused variable instead, as libguestfs does', async () => {
    const { s } = await created({});
    await expect(s.g.parseEnvironmentList(['LIBGUESTFS_PATH=/usr/lib/guestfs', 'LIBGUESTFS_MEMSIZE=777'])).rejects.toThrow(/set_path: not supported in guestsh/);
    expect(s.settings.memsize).toBe(defaultSettings().memsize);
  });

  it('by default the process environment', async () => {
    const saved = process.env.LIBGUESTFS_BACKEND_SETTINGS;
    process.env.LIBGUESTFS_BACKEND_SETTINGS = 'force_tcg:x=y';
    try {
      const s = new Session();
      sessions.push(s);
      expect(s.settings.backendSettings).toEqual(['force_tcg', 'x=y']);
    } finally {
      if (saved === undefined) delete process.env.LIBGUESTFS_BACKEND_SETTINGS;
      else process.env.LIBGUESTFS_BACKEND_SETTINGS = saved;
    }
  });
});
