// Recipes: `.gfs.ts` modules run in an isolated-vm sandbox against a live session.
export { runRecipe, stdRecipeName, RecipeCompileFailed, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS } from './run.js';
export type { RunOptions, RunResult, RunImage, RunMount, RunStage, RunTimings } from './run.js';
export { findPackerImages } from './packer.js';
export type { PackerImages, PackerFile } from './packer.js';
export { watchRecipe, formatWatchRun, formatWatchStart } from './watch.js';
export type { WatchOptions, WatchRun } from './watch.js';
export { initRecipe } from './init.js';
export type { InitResult } from './init.js';
export { runInSandbox, prepareRecipe, RecipeFailed, mapStack, stdlibDir, STDLIB_MODULES, STDLIB_RECIPES } from './sandbox.js';
export type { PreparedRecipe, RecipeFailure, SandboxOptions, SandboxResult, SourceLocation } from './sandbox.js';
export { PathPolicy, RecipePolicyError, refusal, hostPathArgs } from './policy.js';
export type { RecipeContext, RecipeGuestfs, Recipe } from './types.js';
export { formatRunResult } from './report.js';
