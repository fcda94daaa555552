// Savepoints: a mark on every read-write drive that rollbackTo() returns
// to within the same session. A savepoint costs one new qcow2 layer per
// drive (the layer below freezes); a rollback swaps each disk for a fresh
// layer over the frozen one, with the filesystems unmounted around the swap.

import { join } from 'node:path';
import type { GuestfsApi } from '../../spec/api.js';
import { UsageError } from '../errors.js';
import { createOverlay } from '../qemu/img.js';
import type { Vm } from '../qemu/vm.js';
import type { Drive } from './drives.js';
import { diskName, type GuestShell, inGuestUntil, plugAndSettle, waitForDisks } from './hotplug.js';
import { currentMounts, remount } from './mounts.js';

interface Savepoint {
  name: string;
  /** Per drive index: how many layers existed when it was taken (the last of them is frozen since). */
  depth: Map<number, number>;
}

export interface SavepointHost {
  readonly drives: readonly Drive[];
  readonly g: Pick<GuestfsApi, 'sync' | 'mountpoints' | 'umountAll' | 'mount'>;
  shell: GuestShell;
  vm(): Vm;
  runDir(): string;
  /** Disks the guest has right now: the session's drives plus any attached read-only. */
  diskCount(): number;
}

export class Savepoints {
  private marks: Savepoint[] = [];
  // Names the qcow2 files and block nodes; never reused within a session.
  private counter = 0;

  constructor(private readonly host: SavepointHost) {}

  /** The drives the marks were of are gone (the handle went back to config). */
  forget(): void {
    this.marks = [];
  }

  async take(name: string): Promise<void> {
    const writable = [...this.host.drives.entries()].filter(([, d]) => d.tx);
    if (writable.length === 0) throw new UsageError('savepoint: no read-write drive to mark (savepoints work on transactional drives)');
    this.marks = this.marks.filter((p) => p.name !== name);
    await this.host.g.sync();
    const depth = new Map<number, number>();
    const n = this.counter++;
    for (const [i, d] of writable) {
      depth.set(i, d.layers.length);
      const file = join(this.host.runDir(), `savepoint${n}-${i}.qcow2`);
      d.top = await this.host.vm().addLayer(d.top, file, `sp${n}d${i}`);
      d.layers.push(file);
    }
    this.marks.push({ name, depth });
  }

  /** Savepoints taken after `name` are forgotten; `name` itself stays, to roll back to again. */
  async rollbackTo(name: string): Promise<void> {
    const at = this.marks.findIndex((p) => p.name === name);
    if (at < 0) {
      const known = this.marks.map((p) => p.name).join(', ') || 'none';
      throw new UsageError(`rollback: no savepoint named '${name}' (savepoints: ${known})`);
    }
    const sp = this.marks[at]!;
    const { g, shell } = this.host;
    const vm = this.host.vm();
    const mounts = await currentMounts(g);
    await g.umountAll();
    const n = this.counter++;
    // Out first, all of them, then back in one at a time: the guest names a
    // disk by the lowest free sdX, so this order gives every disk its name back.
    for (const i of sp.depth.keys()) await vm.unplug(i);
    const gone = [...sp.depth.keys()].map((i) => `/dev/${diskName(i)}`).join(' ');
    await shell(`for d in ${gone}; do ${inGuestUntil('[ ! -b $d ]')}; done`);
    for (const [i, depth] of sp.depth) {
      const d = this.host.drives[i]!;
      // A fresh layer over the savepoint's frozen one: what was written
      // since is left behind in the discarded layers.
      const frozen = d.layers[depth - 1]!;
      const file = join(this.host.runDir(), `rollback${n}-${i}.qcow2`);
      await createOverlay(frozen, 'qcow2', file);
      const node = `rb${n}d${i}`;
      await plugAndSettle(vm, shell, i, { ...d.qemu, file, format: 'qcow2' }, node);
      d.layers.splice(depth, Infinity, file);
      d.top = node;
    }
    this.marks.splice(at + 1);
    await waitForDisks(shell, this.host.diskCount());
    await remount(g, mounts);
  }
}
