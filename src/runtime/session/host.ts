// What library-side actions and the change report may use of a session: a
// narrow view instead of the Session class, so that they depend on this
// module and the spec only (the Session imports them, not the other way
// round).

import type { GuestfsApi, GuestfsInternalApi, LibraryImplementations } from '../../spec/api.js';
import type { Drive, DriveOptions } from './drives.js';
import type { SessionState } from './lifecycle.js';
import type { SessionSettings } from './settings.js';

/**
 * A value kept once per session and made on first use (feature-group probes,
 * handle properties guestsh only stores). The slot object itself is the key.
 */
export class SessionSlot<T> {
  constructor(readonly create: () => T) {}
}

export interface SessionHost {
  /** The public actions, typed. */
  readonly g: GuestfsApi;
  /** libguestfs's internal and debug actions (internal_write, debug sh, …), typed. */
  readonly internal: GuestfsInternalApi;
  readonly state: SessionState;
  readonly settings: SessionSettings;
  readonly drives: readonly Drive[];
  /** The private temp directory (sockets, overlays), while one exists. */
  readonly runDirectory: string | null;
  /** The qemu process id while the appliance runs. */
  readonly qemuPid: number | null;
  slot<T>(slot: SessionSlot<T>): T;
  addDrive(path: string, opts?: DriveOptions): Promise<void>;
  addDriveScratch(sizeBytes: bigint | number, opts?: { label?: string | undefined; blocksize?: number | undefined }): Promise<void>;
  launch(): Promise<void>;
  shutdown(): Promise<void>;
  /** libguestfs's shutdown action: stop and commit, then back to config with no drives. */
  stopAppliance(): Promise<void>;
  close(): Promise<void>;
  /** Plugs another image in read-only (through a throwaway overlay); returns its device. */
  attachReadOnly(path: string, format?: string): Promise<string>;
  /** Runs `hook` at the start of shutdown() or close(), once; returns the function that removes it. */
  beforeEnd(hook: () => Promise<void>): () => void;
  /** Unplugs the drive attachReadOnly() added last. */
  detachReadOnly(device: string): Promise<void>;
}

/** The library-side actions guestsh implements, each typed by the spec. */
export type LibraryTable = Partial<LibraryImplementations<SessionHost>>;
