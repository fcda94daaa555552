// guestsh's public API.
export { Session } from './runtime/session/session.js';
export type { FileChange, ChangeKind } from './runtime/session/changes.js';
export type { SessionState, SessionEvents, SessionOptions, DriveOptions, ProgressEvent } from './runtime/session/session.js';
export { ApplianceError, CancelledError, GuestfsError, UsageError } from './runtime/errors.js';
export type { ArgValue, CallTransfer, OptArgs, RetValue, StructValue } from './spec/values.js';
export type { GuestfsApi } from './spec/api.js';
export * from './spec/api.generated.js';
