// Reports whether the appliance has a network: the handle's setting, the
// interfaces its kernel has and whether a default route was set up (read
// through the mounted guest, whose commands see the appliance's /sys and /proc).
export default async ({ g }: { g: any }) => {
  // Read-write: with a network, libguestfs's sh puts the appliance's resolv.conf
  // in place for the command (--ro keeps the image itself untouched).
  await g.mount('/dev/sda2', '/');
  const routes: string = await g.sh('cat /proc/net/route');
  return {
    network: await g.getNetwork(),
    interfaces: (await g.sh('ls /sys/class/net')).split('\n').filter(Boolean),
    defaultRoute: routes.split('\n').some((l) => l.split('\t')[1] === '00000000'),
  };
};
