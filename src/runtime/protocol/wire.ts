// Wire constants of guestfsd's protocol, taken from the spec (which reads them
// from libguestfs's guestfs_protocol.x) rather than retyped here.
import { spec } from '../../spec/index.js';

export const wire = spec.protocol;

export const enum Direction {
  Call = 0,
  Reply = 1,
}

export const enum Status {
  Ok = 0,
  Error = 1,
}
