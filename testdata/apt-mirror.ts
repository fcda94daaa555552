// Finds the Debian mirror this machine's apt already uses, so no archive host
// name is ever written into the repository.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { BuildError } from './build-support.js';

export interface AptSource {
  uri: string;
  /** Keyring from the entry's Signed-By, when it names a file. */
  keyring?: string;
  /** Where the entry was found, for messages. */
  file: string;
}

const APT_DIR = '/etc/apt';

/** deb822 `.sources` paragraphs as field maps (continuation lines folded, comments dropped). */
function parseDeb822(text: string): Map<string, string>[] {
  const paragraphs: Map<string, string>[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let lastField: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (/^\s/.test(line) && lastField) {
        fields.set(lastField, `${fields.get(lastField)} ${line.trim()}`);
        continue;
      }
      const match = /^([\w-]+):\s*(.*)$/.exec(line);
      if (!match) continue;
      lastField = match[1]!.toLowerCase();
      fields.set(lastField, match[2]!.trim());
    }
    if (fields.size > 0) paragraphs.push(fields);
  }
  return paragraphs;
}

function fromDeb822(file: string, suite: string): AptSource | undefined {
  for (const fields of parseDeb822(fs.readFileSync(file, 'utf8'))) {
    const words = (name: string) => (fields.get(name) ?? '').split(/\s+/).filter(Boolean);
    if (fields.get('enabled')?.toLowerCase() === 'no') continue;
    if (!words('types').includes('deb') || !words('suites').includes(suite)) continue;
    const uri = words('uris')[0];
    if (!uri) continue;
    const signedBy = fields.get('signed-by');
    const keyring = signedBy && signedBy.startsWith('/') && !signedBy.includes(' ') ? signedBy : undefined;
    return { uri, keyring, file };
  }
  return undefined;
}

/** One-line format: `deb [options] URI suite component...`. */
function fromOneLineList(file: string, suite: string): AptSource | undefined {
  for (const rawLine of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = rawLine.replace(/#.*/, '').trim();
    const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (match && match[2] === suite) return { uri: match[1]!, file };
  }
  return undefined;
}

/** The first enabled binary (`deb`) source for `suite` in the machine's apt configuration. */
export function findAptSource(suite: string): AptSource {
  const listDir = path.join(APT_DIR, 'sources.list.d');
  const candidates = [
    ...(fs.existsSync(listDir) ? fs.readdirSync(listDir).sort() : []).map((name) => path.join(listDir, name)),
    path.join(APT_DIR, 'sources.list'),
  ];
  for (const file of candidates) {
    if (!fs.existsSync(file)) continue;
    const source = file.endsWith('.sources')
      ? fromDeb822(file, suite)
      : file.endsWith('.list')
        ? fromOneLineList(file, suite)
        : undefined;
    if (source) return source;
  }
  throw new BuildError(
    `no apt source for Debian ${suite} in ${APT_DIR}/sources.list or ${listDir}/: ` +
      `add a "deb" entry for suite ${suite} (debootstrap downloads from it)`,
  );
}
