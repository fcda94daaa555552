// A read-only report on an image: what it is, who can log in, what state
// it is in for cloning. Run with --json to get it as data:
//
//   guestsh run -a disk.qcow2 --ro inspect-report.gfs.ts --json
//
import type { RecipeContext } from 'guestsh';
import { inspectReport } from 'guestsh/inspect';
//
export default async ({ g, log }: RecipeContext) => {
  const r = await inspectReport({ g, log });
  log(`${r.productName} (${r.distro} ${r.version}, ${r.arch}) hostname=${r.hostname}`);
  log(`${r.packages} packages via ${r.packageManagement}; filesystems: ${Object.keys(r.filesystems).join(' ')}`);
  for (const u of r.users) log(`  user ${u.name} uid=${u.uid} home=${u.home} shell=${u.shell}`);
//
  const warnings: string[] = [];
  if (r.sshHostKeys.length) warnings.push(`${r.sshHostKeys.length} SSH host key(s) present: clones would share them`);
  if (r.machineId) warnings.push('a machine-id is set: clones would share it');
  for (const w of warnings) log(`warning: ${w}`);
  return { ...r, warnings };
};
