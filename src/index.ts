// guestsh's public API.
export { Session } from './runtime/session/session.js';
export type { FileChange, ChangeKind } from './runtime/session/changes.js';
export type { SessionState, SessionEvents, DriveOptions, ProgressEvent } from './runtime/session/session.js';
export { ApplianceError, CancelledError, GuestfsError, UsageError } from './runtime/errors.js';
export type { ArgValue, OptArgs, RetValue, StructValue } from './runtime/protocol/codec.js';
export type { GuestfsApi } from './commands/api.js';
export * from './commands/api.generated.js';
