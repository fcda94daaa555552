// Lookups over the spec that the runtime and the shell share.
import { publicActions, spec } from './spec/index.js';
import type { StructSpec } from './spec/types.js';

const structs = new Map(spec.structs.map((s) => [s.name, s]));

export function structByName(name: string): StructSpec {
  const s = structs.get(name);
  if (!s) throw new Error(`spec.json has no struct '${name}'`);
  return s;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

/** Up to three public command names closest to a mistyped one (kebab-case, as typed in the shell). */
export function suggestActions(typed: string): string[] {
  const t = typed.replace(/_/g, '-');
  return publicActions()
    .map((a) => a.name.replace(/_/g, '-'))
    .map((n) => ({ n, d: editDistance(t, n) }))
    .filter(({ n, d }) => d <= Math.max(2, Math.floor(t.length / 3)) || n.startsWith(t))
    .sort((x, y) => x.d - y.d || x.n.localeCompare(y.n))
    .slice(0, 3)
    .map(({ n }) => n);
}
