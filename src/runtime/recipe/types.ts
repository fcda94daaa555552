// Types for recipe authors: `import type { RecipeContext } from 'guestsh'`
// (the starter tsconfig from `guestsh init-recipe` maps 'guestsh' here).
// At run time the sandbox provides the same names from its own 'guestsh' module.

import type { GuestfsApi } from '../../spec/api.generated.js';

export type { RecipeParamSpec, RecipeParamSpecs } from '../../spec/values.js';

export type * from '../../spec/api.generated.js';

/** The session a recipe gets: every public libguestfs call (async), plus savepoints. */
export type RecipeGuestfs = GuestfsApi & {
  /** Marks a point the recipe can return to with rollbackTo(name). */
  savepoint(name: string): Promise<void>;
  /** Undoes every change made since savepoint(name). */
  rollbackTo(name: string): Promise<void>;
};

export interface RecipeContext {
  g: RecipeGuestfs;
  /** --param key=value pairs. */
  params: Readonly<Record<string, string>>;
  /** One line to the run's log (objects are shown as JSON). */
  log: (...args: unknown[]) => void;
}

export type Recipe = (ctx: RecipeContext) => unknown | Promise<unknown>;

/** Identity helper that types a recipe's context without an annotation. */
export declare function defineRecipe<R extends Recipe>(recipe: R): R;

/** A failed guestfs call inside a recipe. */
export declare class GuestfsError extends Error {
  readonly action: string;
  readonly errno: string;
}
/** A call the sandbox or the session refused (wrong arguments, forbidden action, path outside the allowed directories). */
export declare class UsageError extends Error {}
