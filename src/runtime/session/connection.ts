// The running appliance as a session holds it: the VM and the rpc over its
// guestfsd channel. Letting go of one always goes through here, so a VM that
// is given up (a resume that failed half-way, a failed launch) is dead and
// deaf before anything else starts: qemu killed and reaped, the session's
// listeners off its channel, its rpc unreachable.

import type { ProgressMessage } from '../protocol/channel.js';
import { Rpc } from '../protocol/rpc.js';
import type { Vm } from '../qemu/vm.js';

export class Connection {
  readonly rpc: Rpc;

  constructor(
    readonly vm: Vm,
    private readonly onProgress: (p: ProgressMessage) => void,
  ) {
    vm.channel!.on('progress', onProgress);
    this.rpc = new Rpc(vm.channel!);
  }

  private detach(): void {
    this.vm.channel?.off('progress', this.onProgress);
    this.vm.removeAllListeners('console');
  }

  /** Kills qemu and waits until it has exited. */
  async kill(): Promise<void> {
    this.detach();
    this.vm.kill();
    await this.vm.exited;
  }

  /** Asks qemu to quit, so it flushes the drives (killed if it takes too long). */
  async quit(): Promise<void> {
    this.detach();
    await this.vm.quit();
  }
}
