// Host-path calls driven by params: upload params.src (host) to params.to
// (guest, default /upload-test), download params.from (guest, default
// /etc/hostname) to params.dst (host), copy_in, copy_out, tar_in and tar_out.
import type { RecipeContext } from 'guestsh';
export default async ({ g, params }: RecipeContext) => {
  if (params.src) await g.upload(params.src, params.to ?? '/upload-test');
  if (params.dst) await g.download(params.from ?? '/etc/hostname', params.dst);
  if (params.copyin) await g.copyIn(params.copyin, '/');
  if (params.copyout) await g.copyOut(params.from ?? '/etc/hostname', params.copyout);
  if (params.tarin) await g.tarIn(params.tarin, '/');
  if (params.tarout) await g.tarOut('/etc', params.tarout);
  return 'ok';
};
