// `guestsh init-recipe NAME`: a starter recipe and a tsconfig that
// type-checks it against guestsh's recipe types and standard library.

import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Module paths (without extension) for the tsconfig: 'guestsh' and 'guestsh/*'. */
export function typePaths(): { guestsh: string; stdlib: string } {
  const here = dirname(fileURLToPath(import.meta.url)); // …/runtime/recipe (src or dist/src)
  return { guestsh: join(here, 'types'), stdlib: join(here, '..', '..', 'stdlib', '*') };
}

const starter = (name: string): string => `// ${name}: a guestsh recipe. Run it with
//   guestsh run -a disk.img -i ${name}.gfs.ts [--param key=value]... [--dry-run]
// The image changes only if this function returns without throwing.
import type { RecipeContext } from 'guestsh';
import { sysprep } from 'guestsh/sysprep';
import { hostname } from 'guestsh/customize';

export default async ({ g, params, log }: RecipeContext) => {
  const roots = await g.inspectOs();
  log('operating systems:', roots);
  if ((await g.mounts()).length === 0) throw new Error('mount the guest with -i or -m');

  await hostname({ g, log }, params.hostname ?? 'localhost');
  const changes = await sysprep({ g, log }, { disable: ['logfiles'] });
  log(\`sysprep made \${changes.length} change(s)\`);
};
`;

// Recipes run without Node: buffers from guestfs calls are plain Uint8Array (the generated API says Buffer).
const ENV_DTS = `// Written by guestsh init-recipe.\ntype Buffer = Uint8Array;\n`;

export interface InitResult {
  recipe: string;
  tsconfig: string;
}

/** Writes NAME.gfs.ts and tsconfig.json into dir (default: the current directory); refuses to overwrite. */
export async function initRecipe(name: string, dir = '.'): Promise<InitResult> {
  const base = name.replace(/\.gfs\.ts$/, '');
  if (!/^[A-Za-z0-9._-]+$/.test(base)) throw new Error(`init-recipe: '${name}' is not a plain file name`);
  const d = resolve(dir);
  await mkdir(d, { recursive: true });
  const recipe = join(d, `${base}.gfs.ts`);
  const tsconfig = join(d, 'tsconfig.json');
  if (await stat(recipe).then(() => true, () => false)) throw new Error(`init-recipe: ${recipe} already exists`);
  await writeFile(recipe, starter(base), { flag: 'wx' });
  const paths = typePaths();
  const rel = (p: string): string => {
    const r = relative(d, p);
    return r.startsWith('.') ? r : `./${r}`;
  };
  if (!(await stat(tsconfig).then(() => true, () => false))) {
    const cfg = {
      compilerOptions: {
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        lib: ['ES2022'],
        types: [],
        strict: true,
        noEmit: true,
        allowImportingTsExtensions: true,
        skipLibCheck: true,
        paths: { guestsh: [rel(paths.guestsh)], 'guestsh/*': [rel(paths.stdlib)] },
      },
      include: ['*.gfs.ts', '**/*.gfs.ts', 'guestsh-env.d.ts'],
    };
    await writeFile(tsconfig, `${JSON.stringify(cfg, null, 2)}\n`, { flag: 'wx' });
    await writeFile(join(d, 'guestsh-env.d.ts'), ENV_DTS, { flag: 'w' });
  }
  return { recipe, tsconfig };
}
