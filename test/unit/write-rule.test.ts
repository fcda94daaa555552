// Which calls count as writes decides whether the shell asks at exit and
// whether a run commits at all: the rule and its exception lists.
import { describe, expect, it } from 'vitest';
import { actionByName } from '../../src/spec/index.js';
import { WRITE_RULE_EXCEPTIONS, writesDisks } from '../../src/runtime/session/action-policy.js';

const writes = (name: string): boolean => writesDisks(actionByName(name)!);

describe('the write rule', () => {
  it('counts effects on the disks and not reads, mounts or downloads', () => {
    for (const n of ['write', 'mkdir_p', 'upload', 'rm_rf', 'mkfs', 'part_add', 'tar_in', 'set_e2label', 'touch']) expect(writes(n), n).toBe(true);
    for (const n of ['cat', 'ls', 'is_file', 'mount', 'mount_ro', 'umount_all', 'download', 'tar_out', 'sync', 'inspect_os', 'list_filesystems']) expect(writes(n), n).toBe(false);
  });
  it('counts the answering calls that also change the disks', () => {
    for (const n of ['sh', 'sh_lines', 'command', 'command_lines', 'fsck', 'xfs_repair', 'mkdtemp', 'pwrite', 'pwrite_device']) expect(writes(n), n).toBe(true);
  });
  it('names only daemon actions in its exception lists, each against the return kind it corrects', () => {
    for (const n of WRITE_RULE_EXCEPTIONS.stateOnly) {
      const a = actionByName(n);
      expect(a?.procNr, n).not.toBeNull();
      expect(a!.ret.kind, n).toBe('RErr');
    }
    for (const n of WRITE_RULE_EXCEPTIONS.answersAndWrites) {
      const a = actionByName(n);
      expect(a?.procNr, n).not.toBeNull();
      expect(a!.ret.kind, n).not.toBe('RErr');
    }
  });
});
