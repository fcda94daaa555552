// Firstboot scripts for test/firstboot-boot.test.ts, which boots the guest.
// round=1: two ordered scripts, a marker (guestsh/firstboot's markerCommand)
// and then one that powers the guest off. round=2: one more script that
// powers it off, to show the round-1 scripts do not run again.
// Each script appends "<round> <what>" to the order file.
import type { RecipeContext } from 'guestsh';
import { addCommand, addScript, markerCommand, status } from 'guestsh/firstboot';

export default async ({ g, params, log }: RecipeContext) => {
  const ctx = { g, log };
  const round = params.round ?? '1';
  const order = params.order ?? '/root/firstboot-order';
  // --no-block: the runner is itself part of the boot transaction systemd
  // would have to finish first; queue the power-off and return.
  const powerOff = `echo '${round} poweroff' >> ${order}; systemctl poweroff --no-block`;
  if (round === '1') {
    const marker = params.marker ?? '/root/firstboot-marker';
    await addScript(ctx, 'marker', `${markerCommand(marker, params.text ?? 'guestsh firstboot ran')}\necho '1 marker' >> ${order}\n`);
  }
  await addCommand(ctx, powerOff);
  return status(ctx);
};
