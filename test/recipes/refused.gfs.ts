import type { RecipeContext } from 'guestsh';
export default async ({ g, params }: RecipeContext) => {
  const which = params.which ?? 'set_hv';
  if (which === 'set_hv') await g.setHv('/bin/sh');
  if (which === 'set_append') await g.setAppend('init=/bin/sh');
  if (which === 'config') await g.config('-device', 'foo');
  if (which === 'launch') await g.launch();
  if (which === 'shutdown') await g.shutdown();
  if (which === 'add_drive') await g.addDrive('/etc/passwd');
  if (which === 'disk_create') await g.diskCreate('/tmp/x.img', 'raw', 1024);
  if (which === 'set_path') await g.setPath('/tmp');
  if (which === 'parse_environment') await g.parseEnvironment();
};
