// A guest's filesystems on a host directory: the FUSE device, the server
// that answers it from the appliance, and the watchdog that unmounts it if
// guestsh dies. Nothing here knows about sessions or transactions: the
// caller gives the typed API of a launched appliance with its filesystems
// mounted, and decides what happens to the changes once `ended` settles.

import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { GuestfsApi } from '../../spec/api.js';
import { UsageError } from '../errors.js';
import { watchMountpoint } from '../qemu/watchdog.js';
import { BusyError, FS_TYPE, FuseDevice, mountAt, sourceFor, unmount } from './device.js';
import { GuestFs } from './fs.js';
import { parseRequest, reply } from './wire.js';

export { BusyError, FS_TYPE, mountAt, sourceFor, unmount } from './device.js';

export interface LocalMountOptions {
  readonly?: boolean | undefined;
  /** Extra kernel mount options (comma-separated). */
  options?: string | undefined;
  /** Default 60 s, as libguestfs's mount_local. */
  cacheTimeoutMs?: number | undefined;
  trace?: ((line: string) => void) | undefined;
  /** False once the session behind `g` has ended: the mount is then detached at the next request. */
  alive?: (() => boolean) | undefined;
}

export class LocalMount {
  /** Settles when the mount is gone: unmounted (resolves), or the appliance died (rejects with why). */
  readonly ended: Promise<void>;
  private fatal: Error | null = null;
  private unmounting: Promise<void> | null = null;

  private constructor(
    readonly mountpoint: string,
    private readonly device: FuseDevice,
    readonly fs: GuestFs,
    private readonly releaseWatchdog: () => void,
  ) {
    this.ended = this.device
      .serve((buf) => {
        const req = parseRequest(buf);
        void this.fs.answer(req).then((a) => a && this.device.send(reply(req.unique, a.error, a.payload)));
      })
      .finally(() => {
        this.device.close();
        this.releaseWatchdog();
      })
      .then(() => {
        if (this.fatal) throw this.fatal;
      });
  }

  /**
   * Mounts the appliance's tree (as `g` sees it under /) on `mountpoint`, a
   * directory. Requests are served from now until it is unmounted.
   */
  static async mount(g: GuestfsApi, mountpoint: string, o: LocalMountOptions = {}): Promise<LocalMount> {
    const path = resolve(mountpoint);
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`mount point ${mountpoint}: ${e.code === 'ENOENT' ? 'no such directory (create it first)' : e.message}`);
    });
    if (!st.isDirectory()) throw new UsageError(`mount point ${mountpoint} is not a directory`);
    const there = mountAt(path);
    if (there) throw new UsageError(`${mountpoint} is a mount point already (${there.type} ${there.source}): unmount it or choose another directory`);
    const device = await FuseDevice.mount(path, { readonly: Boolean(o.readonly), extra: o.options });
    const release = watchMountpoint(path, sourceFor(process.pid), FS_TYPE);
    let mount!: LocalMount;
    const fs = new GuestFs(g, {
      readonly: Boolean(o.readonly),
      cacheTimeoutMs: o.cacheTimeoutMs ?? 60_000,
      trace: o.trace,
      alive: o.alive,
      onFatal: (e) => mount.fail(e),
    });
    mount = new LocalMount(path, device, fs, release);
    return mount;
  }

  /** The appliance is gone: answer nothing more, detach the mount (users see it vanish rather than hang). */
  private fail(e: Error): void {
    if (this.fatal) return;
    this.fatal = e;
    this.unmounting ??= unmount(this.mountpoint, true).catch(() => undefined);
  }

  /** Detaches the mount at once (lazily: users of it keep what they have open) and waits until the server has stopped. */
  async detach(): Promise<void> {
    this.unmounting ??= unmount(this.mountpoint, true).catch(() => undefined);
    await this.unmounting;
    await this.ended.catch(() => undefined);
  }

  /**
   * Unmounts and waits until the server has stopped. Busy: a BusyError,
   * after `retries` more attempts a second apart (`onBusy` hears of the
   * first busy one).
   */
  async unmount(retries = 0, onBusy?: (e: BusyError) => void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // Unmounted from outside already (umount, fusermount3 -u): only the server's end is left to wait for.
        if (!this.unmounting && !mountAt(this.mountpoint)) break;
        await (this.unmounting ?? unmount(this.mountpoint));
        break;
      } catch (e) {
        if (!(e instanceof BusyError) || attempt >= retries) throw e;
        if (attempt === 0) onBusy?.(e);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    await this.ended.catch(() => undefined);
  }
}
