// The errors guestsh raises, each a distinct class so callers (the shell, recipes,
// pipelines) can tell a failing guest call from a broken appliance or a bad input.

/** guestfsd answered a call with an error: errno name (may be empty) and message. */
export class GuestfsError extends Error {
  override name = 'GuestfsError';
  constructor(
    readonly action: string,
    readonly errno: string,
    message: string,
  ) {
    super(`${action}: ${message}`);
  }
}

/** The user (or a signal) cancelled a file transfer; the session stays usable. */
export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor(readonly action: string) {
    super(`${action}: operation cancelled`);
  }
}

/** The appliance went away (qemu exited, guestfsd died, the socket broke). */
export class ApplianceError extends Error {
  override name = 'ApplianceError';
}

/** Bad input from the user: a missing image, a wrong argument, a call in the wrong state. */
export class UsageError extends Error {
  override name = 'UsageError';
  /** The CLI's exit status for it (2, usage; a subclass may name its own). */
  readonly exitCode: number = 2;
}
