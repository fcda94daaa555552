// Where guestsh keeps what it builds once and reuses: the appliance, the
// acceleration probe's verdict. GUESTSH_CACHE overrides (tests, CI).
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheRoot(): string {
  if (process.env.GUESTSH_CACHE) return process.env.GUESTSH_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'guestsh');
}
