// sysprep with customizations composed in code (virt-sysprep's customize options).
import type { RecipeContext } from 'guestsh';
import { sshInject, write } from 'guestsh/customize';
import { sysprep } from 'guestsh/sysprep';

export default async ({ g, log }: RecipeContext) =>
  sysprep(
    { g, log },
    {
      operations: ['customize', 'ssh-userdir', 'tmp-files'],
      customize: async (ctx) => [
        ...(await sshInject(ctx, 'demo', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISysprepCustomize000000000000000000000000 sysprep@test')),
        ...(await write(ctx, '/tmp/written-by-customize', 'kept\n')),
      ],
    },
  );
