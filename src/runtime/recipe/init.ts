// `guestsh init-recipe NAME`: a starter recipe that runs as its header says,
// and a tsconfig that finds guestsh's types the way any package's are found:
// through node_modules and the package's exports (the `guestsh-recipe`
// condition selects the recipe-side types), so it holds no path of this
// machine and keeps working when guestsh is upgraded.

import { mkdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const starter = (name: string): string => `// ${name}: a guestsh recipe. Try it without changing the image, then for real:
//   guestsh run -a disk.img -i ${name}.gfs.ts --dry-run
//   guestsh run -a disk.img -i ${name}.gfs.ts [--param hostname=NAME]
// guestsh run type-checks it first (guestsh check ${name}.gfs.ts does only that).
// The image changes only if this function returns without throwing.
import type { RecipeContext } from 'guestsh';
import { sysprep } from 'guestsh/sysprep';
import { hostname } from 'guestsh/customize';

export default async ({ g, params, log }: RecipeContext) => {
  // -i has inspected the guest and mounted its filesystems.
  const [root] = await g.inspectGetRoots();
  if (root === undefined) throw new Error('no operating system found: run with -i (or mount with -m dev:/)');
  log(\`found \${await g.inspectGetDistro(root)} \${await g.inspectGetMajorVersion(root)}\`);

  await hostname({ g, log }, params.hostname ?? 'localhost');
  const changes = await sysprep({ g, log }, { disable: ['logfiles'] });
  log(\`sysprep made \${changes.length} change(s)\`);
};
`;

// Recipes run without Node: buffers from guestfs calls are plain Uint8Array (the generated API says Buffer).
const ENV_DTS = `// Written by guestsh init-recipe.\ntype Buffer = Uint8Array;\n`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'ESNext',
    moduleResolution: 'Bundler',
    // 'guestsh' resolves to the recipe-side types (RecipeContext, the sandbox's g), not the Node library's.
    customConditions: ['guestsh-recipe'],
    lib: ['ES2022'],
    types: [],
    strict: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
  },
  include: ['*.gfs.ts', '**/*.gfs.ts', 'guestsh-env.d.ts'],
};

export interface InitResult {
  recipe: string;
  tsconfig: string;
  /** The guestsh package cannot be found from the recipe's directory, so an editor or tsc there will not find its types. */
  typesUnresolved: boolean;
}

/** Writes NAME.gfs.ts, tsconfig.json and guestsh-env.d.ts into dir (default: the current directory); refuses to overwrite the recipe. */
export async function initRecipe(name: string, dir = '.'): Promise<InitResult> {
  const base = name.replace(/\.gfs\.ts$/, '');
  if (!/^[A-Za-z0-9._-]+$/.test(base)) throw new Error(`init-recipe: '${name}' is not a plain file name`);
  const d = resolve(dir);
  await mkdir(d, { recursive: true });
  const recipe = join(d, `${base}.gfs.ts`);
  const tsconfig = join(d, 'tsconfig.json');
  if (await stat(recipe).then(() => true, () => false)) throw new Error(`init-recipe: ${recipe} already exists`);
  await writeFile(recipe, starter(base), { flag: 'wx' });
  if (!(await stat(tsconfig).then(() => true, () => false))) {
    await writeFile(tsconfig, `${JSON.stringify(TSCONFIG, null, 2)}\n`, { flag: 'wx' });
    await writeFile(join(d, 'guestsh-env.d.ts'), ENV_DTS, { flag: 'w' });
  }
  return { recipe, tsconfig, typesUnresolved: !resolvesGuestsh(d) };
}

function resolvesGuestsh(dir: string): boolean {
  try {
    createRequire(join(dir, 'recipe.js')).resolve('guestsh/package.json');
    return true;
  } catch {
    return false;
  }
}
