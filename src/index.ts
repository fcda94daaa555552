// guestsh's public API.
export { Session } from './runtime/session/session.js';
export type { FileChange, ChangeKind } from './runtime/session/changes.js';
export type { SessionState, SessionEvents, SessionOptions, DriveOptions, ProgressEvent } from './runtime/session/session.js';
export { ApplianceError, CancelledError, GuestfsError, UsageError } from './runtime/errors.js';
export type { ArgValue, CallTransfer, OptArgs, RetValue, StructValue } from './spec/values.js';
export type { GuestfsApi } from './spec/api.js';
export * from './spec/api.generated.js';
// Recipes from a Node program: what `guestsh run` does (compile, open, run
// in the sandbox, commit all or nothing), and the types recipes are written against.
export { runRecipe, formatRunResult } from './runtime/recipe/index.js';
export type { RunOptions, RunResult, RunImage, RunMount, RunTimings, RecipeFailure, RecipeContext, Recipe, RecipeGuestfs } from './runtime/recipe/index.js';
