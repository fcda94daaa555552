// Scripts that run once, at the guest's next boot. Installs a small runner
// (/usr/lib/guestsh-firstboot/run), started by a systemd unit, or by a SysV
// init script on guests without systemd. Scripts live in scripts.d/ named
// NNNN-name and run in that order; each is moved to done.d/ just before it
// runs (run-once, even when it reboots or powers the guest off), and
// everything they print goes to /var/log/guestsh-firstboot.log in the guest.

import type { RecipeParamSpecs } from '../spec/values.js';
import { type Change, type Ctx, ensureMounted, note, type RecipeCtx, shq } from './util.js';

export type { Change, Ctx } from './util.js';

export const FIRSTBOOT_DIR = '/usr/lib/guestsh-firstboot';
export const FIRSTBOOT_LOG = '/var/log/guestsh-firstboot.log';
const UNIT = 'guestsh-firstboot.service';

// Moving a script to done.d before running it, not after, is what makes it
// run once: a script that shuts the guest down (systemctl poweroff/reboot)
// gets the runner stopped by SIGTERM moments after it returns, and a booted
// guest showed that a move made after the script then never happens, so the
// script ran again at every boot. The TERM trap lets the runner log the
// script's exit status and keeps it from starting the next script while the
// guest shuts down; that one stays in scripts.d for the next boot.
const RUNNER = `#!/bin/sh
# guestsh firstboot runner: runs every script in scripts.d once, in name
# order, appending its output to the log; each is moved to done.d first.
dir=${FIRSTBOOT_DIR}
log=${FIRSTBOOT_LOG}
mkdir -p "$dir/done.d"
stamp() { date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null; }
stopping=
trap 'stopping=1' TERM
for script in "$dir"/scripts.d/*; do
  [ -z "$stopping" ] || break
  [ -f "$script" ] || continue
  name=\${script##*/}
  if ! mv -f "$script" "$dir/done.d/$name"; then
    echo "$(stamp) guestsh-firstboot: $name: cannot move it to done.d, not running it" >>"$log"
    continue
  fi
  script=$dir/done.d/$name
  echo "$(stamp) guestsh-firstboot: $name: starting" >>"$log"
  if [ -x "$script" ]; then "$script" >>"$log" 2>&1; else sh "$script" >>"$log" 2>&1; fi
  status=$?
  echo "$(stamp) guestsh-firstboot: $name: exit status $status" >>"$log"
done
exit 0
`;

const SYSTEMD_UNIT = `[Unit]
Description=guestsh first-boot scripts
After=network.target local-fs.target
Wants=network.target
ConditionDirectoryNotEmpty=${FIRSTBOOT_DIR}/scripts.d

[Service]
Type=oneshot
ExecStart=${FIRSTBOOT_DIR}/run
RemainAfterExit=no
TimeoutSec=0
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
`;

const SYSV_SCRIPT = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          guestsh-firstboot
# Required-Start:    $local_fs $network $remote_fs
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:
# Short-Description: guestsh first-boot scripts
### END INIT INFO
case "$1" in
  start|"") exec ${FIRSTBOOT_DIR}/run ;;
  *) exit 0 ;;
esac
`;

async function hasSystemd(ctx: Ctx): Promise<boolean> {
  for (const p of ['/lib/systemd/systemd', '/usr/lib/systemd/systemd', '/bin/systemctl', '/usr/bin/systemctl']) {
    if (await ctx.g.exists(p)) return true;
  }
  return false;
}

async function writeFile(ctx: Ctx, changes: Change[], path: string, text: string, mode: number): Promise<void> {
  const existed = await ctx.g.exists(path);
  if (existed && (await ctx.g.isFile(path)) && (await ctx.g.cat(path)) === text) {
    await ctx.g.chmod(mode, path);
    return;
  }
  await ctx.g.write(path, text);
  await ctx.g.chmod(mode, path);
  note(ctx, changes, { op: 'firstboot', action: existed ? 'modified' : 'created', path });
}

async function symlink(ctx: Ctx, changes: Change[], target: string, link: string): Promise<void> {
  if ((await ctx.g.isSymlink(link)) && (await ctx.g.readlink(link)) === target) return;
  await ctx.g.mkdirP(link.slice(0, link.lastIndexOf('/')));
  await ctx.g.lnSf(target, link);
  note(ctx, changes, { op: 'firstboot', action: 'created', path: link, detail: `→ ${target}` });
}

/** Installs the runner and its boot hook (idempotent). */
export async function installRunner(ctx: Ctx): Promise<Change[]> {
  const changes: Change[] = [];
  const { g } = ctx;
  await g.mkdirP(`${FIRSTBOOT_DIR}/scripts.d`);
  await g.mkdirP(`${FIRSTBOOT_DIR}/done.d`);
  await writeFile(ctx, changes, `${FIRSTBOOT_DIR}/run`, RUNNER, 0o755);
  const systemd = await hasSystemd(ctx);
  // The systemd unit is always installed and enabled (inert without systemd,
  // ready if the guest switches to it); SysV init gets a script and rc links
  // when systemd is absent (with systemd, the native unit of the same name wins).
  await g.mkdirP('/etc/systemd/system/multi-user.target.wants');
  await writeFile(ctx, changes, `/etc/systemd/system/${UNIT}`, SYSTEMD_UNIT, 0o644);
  await symlink(ctx, changes, `/etc/systemd/system/${UNIT}`, `/etc/systemd/system/multi-user.target.wants/${UNIT}`);
  if (!systemd) {
    await g.mkdirP('/etc/init.d');
    await writeFile(ctx, changes, '/etc/init.d/guestsh-firstboot', SYSV_SCRIPT, 0o755);
    for (const level of [2, 3, 4, 5]) {
      const rc = (await g.isDir('/etc/rc.d')) ? `/etc/rc.d/rc${level}.d` : `/etc/rc${level}.d`;
      await symlink(ctx, changes, '../init.d/guestsh-firstboot', `${rc}/S99guestsh-firstboot`);
    }
  }
  return changes;
}

export interface FirstbootOptions {
  /** Position in the run order (lower first); default: after every script already installed. */
  order?: number | undefined;
}

async function nextOrder(ctx: Ctx): Promise<number> {
  let max = 0;
  for (const dir of ['scripts.d', 'done.d']) {
    const path = `${FIRSTBOOT_DIR}/${dir}`;
    if (!(await ctx.g.isDir(path))) continue;
    for (const n of await ctx.g.ls(path)) {
      const m = /^(\d+)-/.exec(n);
      if (m) max = Math.max(max, Number(m[1]));
    }
  }
  return max + 1;
}

/** Installs a script (its text; with or without a #! line) to run once at next boot. Returns what changed. */
export async function addScript(ctx: Ctx, name: string, script: string, opts: FirstbootOptions = {}): Promise<Change[]> {
  const changes = await installRunner(ctx);
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'script';
  const order = opts.order ?? (await nextOrder(ctx));
  const path = `${FIRSTBOOT_DIR}/scripts.d/${String(order).padStart(4, '0')}-${safe}`;
  const text = script.startsWith('#!') ? script : `#!/bin/sh\n${script}`;
  await ctx.g.write(path, text.endsWith('\n') ? text : `${text}\n`);
  await ctx.g.chmod(0o755, path);
  note(ctx, changes, { op: 'firstboot', action: 'created', path });
  return changes;
}

/** Installs one shell command to run once at next boot. */
export async function addCommand(ctx: Ctx, command: string, opts: FirstbootOptions = {}): Promise<Change[]> {
  const name = command.split(/\s+/)[0]!.split('/').pop() ?? 'command';
  return addScript(ctx, name, `#!/bin/sh\n${command}\n`, opts);
}

/** Installs a host script (beside the recipe) to run once at next boot. */
export async function addHostScript(ctx: Ctx, hostPath: string, opts: FirstbootOptions = {}): Promise<Change[]> {
  const tmp = `/tmp/.guestsh-fb-${Date.now().toString(36)}`;
  await ctx.g.upload(hostPath, tmp);
  let text: string;
  try {
    text = await ctx.g.cat(tmp);
  } finally {
    await ctx.g.rmF(tmp);
  }
  return addScript(ctx, hostPath.split('/').pop()!, text, opts);
}

/** The scripts waiting for the next boot and those already run. */
export async function status(ctx: Ctx): Promise<{ pending: string[]; done: string[] }> {
  const list = async (d: string): Promise<string[]> => ((await ctx.g.isDir(d)) ? (await ctx.g.ls(d)).sort() : []);
  return { pending: await list(`${FIRSTBOOT_DIR}/scripts.d`), done: await list(`${FIRSTBOOT_DIR}/done.d`) };
}

/** Installs a marker-writing command; handy to prove firstboot works on a guest. */
export function markerCommand(path: string, text = 'guestsh firstboot ran'): string {
  return `echo ${shq(text)} > ${shq(path)}`;
}

/** The firstboot recipe's params (command or script). */
export const params: RecipeParamSpecs = {
  command: { description: 'a command to run at the first boot' },
  script: { description: 'a host script (beside the recipe) to run at the first boot' },
  order: { description: 'where it runs among the first-boot scripts (lower first)', type: 'number' },
};

/** As a ready recipe: params command=… (one command) or script=HOSTFILE, optional order=N. */
export default async function recipe(ctx: RecipeCtx): Promise<Change[]> {
  await ensureMounted(ctx);
  const order = ctx.params['order'] ? Number(ctx.params['order']) : undefined;
  if (ctx.params['command']) return addCommand(ctx, ctx.params['command'], { order });
  if (ctx.params['script']) return addHostScript(ctx, ctx.params['script'], { order });
  throw new Error('guestsh/firstboot: pass --param command=… or --param script=FILE');
}
