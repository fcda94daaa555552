// Uploads params.src (host) to /upload-test and downloads it to params.dst (host).
import type { RecipeContext } from 'guestsh';
export default async ({ g, params }: RecipeContext) => {
  if (params.src) await g.upload(params.src, '/upload-test');
  if (params.dst) await g.download(params.from ?? '/etc/hostname', params.dst);
  if (params.copyin) await g.copyIn(params.copyin, '/');
  if (params.copyout) await g.copyOut(params.from ?? '/etc/hostname', params.copyout);
  if (params.tarout) await g.tarOut('/etc', params.tarout);
  return 'ok';
};
