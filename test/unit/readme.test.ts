// The README's list of unsupported actions is the code's list.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { notSupported } from '../../src/runtime/session/library/index.js';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('### Not supported in guestsh'), readme.indexOf('### Not built yet'));

describe('README', () => {
  it('names every action guestsh refuses, in its "Not supported" table', () => {
    const listed = new Set(section.match(/\b[a-z][a-z0-9_]+\b/g));
    const missing = Object.keys(notSupported).filter((name) => !listed.has(name));
    expect(missing).toEqual([]);
  });
});
