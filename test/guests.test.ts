// LVM, LUKS, hivex and Windows inspection against the test guests built by
// testdata/lvm.ts, luks.ts and windows.ts: every answer is compared with the
// truth file the builder wrote, never with values repeated here (except the
// LUKS key, which a test is meant to supply). One appliance per describe,
// drives read-only.

import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestfsError, Session } from '../src/index.js';
import { ensureGuest, type LuksTruth, type LvmTruth, type WindowsTruth } from '../testdata/index.js';

const BUILD_MS = 900_000; // a cold build may debootstrap first
const LUKS_KEY = 'guestsh-luks-key';

const noDashes = (uuid: string) => uuid.replaceAll('-', '');

async function openGuest<T>(name: string): Promise<{ s: Session; truth: T }> {
  const images = await ensureGuest(name);
  const truth = JSON.parse(fs.readFileSync(images.truth, 'utf8')) as T;
  const s = new Session();
  await s.addDrive(images.raw, { format: 'raw', readonly: true });
  await s.launch();
  return { s, truth };
}

async function closeGuest(s: Session | undefined): Promise<void> {
  await s?.close();
}

/** Debian's inspection version: major.minor from /etc/debian_version ("12.11" → 12, 11). */
function debianVersion(truth: { debianVersion: string }): { major: number; minor: number } {
  const [major = '0', minor = '0'] = truth.debianVersion.split('.');
  return { major: Number(major), minor: Number(minor) };
}

describe('lvm guest', () => {
  let s: Session;
  let truth: LvmTruth;

  beforeAll(async () => {
    ({ s, truth } = await openGuest<LvmTruth>('lvm'));
  }, BUILD_MS);
  afterAll(() => closeGuest(s));

  it('pvs, vgs and lvs list the physical volume, the volume group and both logical volumes', async () => {
    expect(await s.call('pvs', [])).toEqual([truth.lvm.pv.device]);
    expect(await s.call('vgs', [])).toEqual([truth.lvm.vg.name]);
    expect([...((await s.call('lvs', [])) as string[])].sort()).toEqual(truth.lvm.lvs.map((lv) => lv.device).sort());
  });

  it('pvs_full and vgs_full report the fixed UUIDs, extent size and allocation', async () => {
    const [pv] = (await s.call('pvs_full', [])) as Record<string, unknown>[];
    expect(pv).toMatchObject({ pv_name: truth.lvm.pv.device, pv_uuid: noDashes(truth.lvm.pv.uuid), pv_fmt: 'lvm2' });
    const allocatedBytes = truth.lvm.lvs.reduce((sum, lv) => sum + lv.sizeBytes, 0);
    expect(pv!.pv_used).toBe(BigInt(allocatedBytes));
    const [vg] = (await s.call('vgs_full', [])) as Record<string, unknown>[];
    expect(vg).toMatchObject({
      vg_name: truth.lvm.vg.name,
      vg_uuid: noDashes(truth.lvm.vg.uuid),
      vg_extent_size: BigInt(truth.lvm.vg.extentBytes),
      pv_count: 1n,
      lv_count: BigInt(truth.lvm.lvs.length),
    });
  });

  it('lvs_full reports each LV with its UUID and size', async () => {
    const lvs = (await s.call('lvs_full', [])) as Record<string, unknown>[];
    const seen = lvs.map((lv) => ({ name: lv.lv_name, uuid: lv.lv_uuid, size: lv.lv_size })).sort((a, b) => String(a.name).localeCompare(String(b.name)));
    const expected = truth.lvm.lvs
      .map((lv) => ({ name: lv.name, uuid: noDashes(lv.uuid), size: BigInt(lv.sizeBytes) }))
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(seen).toEqual(expected);
    for (const lv of lvs) expect(lv.lv_attr).toMatch(/^-wi-a/);
  });

  it('pvuuid, vguuid, lvuuid, vgpvuuids and vglvuuids agree with the truth', async () => {
    expect(noDashes(String(await s.call('pvuuid', [truth.lvm.pv.device])))).toBe(noDashes(truth.lvm.pv.uuid));
    expect(noDashes(String(await s.call('vguuid', [truth.lvm.vg.name])))).toBe(noDashes(truth.lvm.vg.uuid));
    for (const lv of truth.lvm.lvs) expect(noDashes(String(await s.call('lvuuid', [lv.device])))).toBe(noDashes(lv.uuid));
    expect(((await s.call('vgpvuuids', [truth.lvm.vg.name])) as string[]).map(noDashes)).toEqual([noDashes(truth.lvm.pv.uuid)]);
    expect(((await s.call('vglvuuids', [truth.lvm.vg.name])) as string[]).map(noDashes).sort()).toEqual(
      truth.lvm.lvs.map((lv) => noDashes(lv.uuid)).sort(),
    );
  });

  it('lvm_canonical_lv_name maps /dev/mapper names to /dev/VG/LV, and vgmeta holds the fixed ids', async () => {
    for (const lv of truth.lvm.lvs) {
      expect(await s.call('lvm_canonical_lv_name', [`/dev/mapper/${truth.lvm.vg.name}-${lv.name}`])).toBe(lv.device);
      expect(await s.call('is_lv', [lv.device])).toBe(true);
    }
    const metadata = Buffer.from((await s.call('vgmeta', [truth.lvm.vg.name])) as Buffer).toString('utf8');
    expect(metadata).toContain(`${truth.lvm.vg.name} {`);
    expect(metadata).toContain(`id = "${truth.lvm.vg.uuid}"`);
    for (const lv of truth.lvm.lvs) expect(metadata).toContain(`id = "${lv.uuid}"`);
  });

  it('filesystems on the partition and the LVs have the fixed UUIDs and labels', async () => {
    for (const f of truth.filesystems) {
      expect(await s.call('vfs_type', [f.device])).toBe(f.type);
      expect(await s.call('vfs_uuid', [f.device])).toBe(f.uuid);
      expect(await s.call('vfs_label', [f.device])).toBe(f.label);
    }
  });

  it('inspection finds Debian with its root on /dev/guestvg/root and the fstab mountpoints', async () => {
    const rootFs = truth.filesystems.find((f) => f.mountpoint === '/')!;
    expect(await s.call('inspect_os', [])).toEqual([rootFs.device]);
    const root = rootFs.device;
    expect(await s.call('inspect_get_type', [root])).toBe('linux');
    expect(await s.call('inspect_get_distro', [root])).toBe(truth.osRelease.ID);
    expect(await s.call('inspect_get_hostname', [root])).toBe(truth.hostname);
    expect(await s.call('inspect_get_major_version', [root])).toBe(debianVersion(truth).major);
    expect(await s.call('inspect_get_minor_version', [root])).toBe(debianVersion(truth).minor);
    expect(await s.call('inspect_get_package_format', [root])).toBe('deb');
    expect(await s.call('inspect_get_mountpoints', [root])).toEqual(
      Object.fromEntries(truth.filesystems.map((f) => [f.mountpoint, f.device])),
    );
  });

  it('the guest mounted from its LVs shows the files the builder wrote', async () => {
    const byDepth = [...truth.filesystems].sort((a, b) => a.mountpoint.length - b.mountpoint.length);
    for (const f of byDepth) await s.call('mount_ro', [f.device, f.mountpoint]);
    try {
      for (const marker of truth.markers) expect(await s.call('cat', [marker.path])).toBe(`${marker.content}\n`);
      expect(await s.call('cat', ['/etc/fstab'])).toBe(truth.fstab);
      expect(await s.call('cat', ['/etc/hostname'])).toBe(`${truth.hostname}\n`);
    } finally {
      await s.call('umount_all', []);
    }
  });
});

describe('luks guest', () => {
  let s: Session;
  let truth: LuksTruth;

  beforeAll(async () => {
    ({ s, truth } = await openGuest<LuksTruth>('luks'));
  }, BUILD_MS);
  afterAll(() => closeGuest(s));

  it('the encrypted partition is LUKS with the fixed UUID and label, and hidden from list_filesystems', async () => {
    expect(await s.call('vfs_type', [truth.luks.device])).toBe('crypto_LUKS');
    expect(await s.call('luks_uuid', [truth.luks.device])).toBe(truth.luks.uuid);
    expect(await s.call('vfs_label', [truth.luks.device])).toBe(truth.luks.label);
    expect(Object.keys((await s.call('list_filesystems', [])) as Record<string, string>)).not.toContain(truth.luks.device);
  });

  it('a wrong key fails with cryptsetup\'s reason and leaves nothing open', async () => {
    const attempt = s.call('luks_open', [truth.luks.device, 'not-the-key', 'wrongkey']);
    await expect(attempt).rejects.toBeInstanceOf(GuestfsError);
    await expect(attempt).rejects.toThrow(/^luks_open: .*No key available with this passphrase/);
    expect(await s.call('list_dm_devices', [])).toEqual([]);
  });

  it('luks_open with the key, mount, read a file, umount, luks_close', async () => {
    await s.call('luks_open', [truth.luks.device, LUKS_KEY, 'opened']);
    try {
      expect(await s.call('list_dm_devices', [])).toEqual(['/dev/mapper/opened']);
      const rootFs = truth.filesystems.find((f) => f.mountpoint === '/')!;
      expect(await s.call('vfs_uuid', ['/dev/mapper/opened'])).toBe(rootFs.uuid);
      await s.call('mount_ro', ['/dev/mapper/opened', '/']);
      try {
        for (const marker of truth.markers) expect(await s.call('cat', [marker.path])).toBe(`${marker.content}\n`);
        expect(await s.call('cat', ['/etc/crypttab'])).toBe(truth.luks.crypttab);
      } finally {
        await s.call('umount_all', []);
      }
    } finally {
      await s.call('luks_close', ['/dev/mapper/opened']);
    }
    expect(await s.call('list_dm_devices', [])).toEqual([]);
  });

  it('inspection with the key supplied finds the Debian root inside LUKS', async () => {
    // What virt-inspector --key does: open every LUKS device, rescan, inspect.
    await s.call('cryptsetup_open', [truth.luks.device, LUKS_KEY, truth.luks.mapName], { readonly: true });
    try {
      await s.call('lvm_scan', [true]);
      const root = `/dev/mapper/${truth.luks.mapName}`;
      expect(await s.call('inspect_os', [])).toEqual([root]);
      expect(await s.call('inspect_get_type', [root])).toBe('linux');
      expect(await s.call('inspect_get_distro', [root])).toBe(truth.osRelease.ID);
      expect(await s.call('inspect_get_hostname', [root])).toBe(truth.hostname);
      expect(await s.call('inspect_get_major_version', [root])).toBe(debianVersion(truth).major);
      expect(await s.call('inspect_get_mountpoints', [root])).toEqual(
        Object.fromEntries(truth.filesystems.map((f) => [f.mountpoint, f.device])),
      );
    } finally {
      await s.call('cryptsetup_close', [`/dev/mapper/${truth.luks.mapName}`]);
    }
  });

  it('without the key, inspection finds no operating system', async () => {
    expect(await s.call('inspect_os', [])).toEqual([]);
  });
});

describe('windows guest', () => {
  let s: Session;
  let truth: WindowsTruth;
  let root: string;

  beforeAll(async () => {
    ({ s, truth } = await openGuest<WindowsTruth>('windows'));
  }, BUILD_MS);
  afterAll(() => closeGuest(s));

  it('the NTFS partition has the fixed serial and label', async () => {
    expect(await s.call('vfs_type', [truth.ntfs.device])).toBe('ntfs');
    expect(await s.call('vfs_uuid', [truth.ntfs.device])).toBe(truth.ntfs.uuid);
    expect(await s.call('vfs_label', [truth.ntfs.device])).toBe(truth.ntfs.label);
  });

  it('inspection finds Windows with the product, version, hostname and drive letters from the hives', async () => {
    const roots = (await s.call('inspect_os', [])) as string[];
    expect(roots).toEqual([truth.ntfs.device]);
    root = roots[0]!;
    expect(await s.call('inspect_get_type', [root])).toBe(truth.type);
    expect(await s.call('inspect_get_distro', [root])).toBe(truth.distro);
    expect(await s.call('inspect_get_product_name', [root])).toBe(truth.productName);
    expect(await s.call('inspect_get_product_variant', [root])).toBe(truth.productVariant);
    expect(await s.call('inspect_get_major_version', [root])).toBe(truth.majorVersion);
    expect(await s.call('inspect_get_minor_version', [root])).toBe(truth.minorVersion);
    expect(await s.call('inspect_get_hostname', [root])).toBe(truth.hostname);
    expect(await s.call('inspect_get_arch', [root])).toBe(truth.arch);
    expect(await s.call('inspect_get_windows_systemroot', [root])).toBe(truth.systemroot);
    expect(await s.call('inspect_get_windows_current_control_set', [root])).toBe(truth.currentControlSet);
    expect(await s.call('inspect_get_drive_mappings', [root])).toEqual(truth.driveMappings);
    expect(await s.call('inspect_get_mountpoints', [root])).toEqual({ '/': truth.ntfs.device });
    const hives = truth.hives.map((h) => h.guestPath);
    expect(await s.call('inspect_get_windows_software_hive', [root])).toBe(hives.find((p) => p.endsWith('SOFTWARE')));
    expect(await s.call('inspect_get_windows_system_hive', [root])).toBe(hives.find((p) => p.endsWith('SYSTEM')));
  });

  it('inspect_list_applications2 lists the application from the Uninstall key', async () => {
    await s.call('mount_ro', [truth.ntfs.device, '/']);
    try {
      const apps = (await s.call('inspect_list_applications2', [truth.ntfs.device])) as Record<string, unknown>[];
      expect(apps.map((a) => ({ name: a.app2_name, displayName: a.app2_display_name, version: a.app2_version, publisher: a.app2_publisher }))).toEqual(
        truth.applications,
      );
    } finally {
      await s.call('umount_all', []);
    }
  });

  describe('hivex calls read back every key and value the builder merged', () => {
    beforeAll(async () => {
      await s.call('mount_ro', [truth.ntfs.device, '/']);
    });
    afterAll(async () => {
      await s.call('umount_all', []);
    });

    const REG_TYPE = { sz: 1, binary: 3, dword: 4 } as const;

    for (const hiveName of ['SOFTWARE', 'SYSTEM'] as const) {
      it(`${hiveName}: hivex_open, hivex_root, hivex_node_children, hivex_node_get_value, hivex_value_*`, async () => {
        const hive = truth.hives.find((h) => h.file === hiveName)!;
        await s.call('hivex_open', [hive.guestPath]);
        try {
          const rootNode = (await s.call('hivex_root', [])) as bigint;
          expect(await s.call('hivex_node_name', [rootNode])).toBe(hive.rootName);
          const children = (await s.call('hivex_node_children', [rootNode])) as { hivex_node_h: bigint }[];
          const childNames = await Promise.all(children.map((c) => s.call('hivex_node_name', [c.hivex_node_h])));
          const topLevel = [...new Set(hive.keys.map((k) => k.path.split('\\')[0]!))];
          expect([...(childNames as string[])].sort()).toEqual(topLevel.sort());

          for (const key of hive.keys) {
            let node = rootNode;
            for (const part of key.path.split('\\')) {
              const child = (await s.call('hivex_node_get_child', [node, part])) as bigint;
              expect(child, `${key.path}: child ${part}`).not.toBe(0n);
              expect(await s.call('hivex_node_parent', [child])).toBe(node);
              node = child;
            }
            const values = (await s.call('hivex_node_values', [node])) as { hivex_value_h: bigint }[];
            const names = await Promise.all(values.map((v) => s.call('hivex_value_key', [v.hivex_value_h])));
            expect([...(names as string[])].sort()).toEqual(key.values.map((v) => v.name).sort());
            for (const expected of key.values) {
              const value = (await s.call('hivex_node_get_value', [node, expected.name])) as bigint;
              expect(value, `${key.path}\\${expected.name}`).not.toBe(0n);
              expect(await s.call('hivex_value_type', [value])).toBe(BigInt(REG_TYPE[expected.type]));
              const raw = Buffer.from((await s.call('hivex_value_value', [value])) as Buffer);
              if (expected.type === 'sz') {
                expect(await s.call('hivex_value_string', [value])).toBe(expected.value);
                expect(await s.call('hivex_value_utf8', [value])).toBe(expected.value);
              } else if (expected.type === 'dword') {
                expect(raw.length).toBe(4);
                expect(raw.readUInt32LE(0)).toBe(expected.value);
              } else {
                expect([...raw]).toEqual(expected.value);
              }
            }
          }
          expect(await s.call('hivex_node_get_value', [rootNode, 'no-such-value'])).toBe(0n);
        } finally {
          await s.call('hivex_close', []);
        }
      });
    }
  });
});
