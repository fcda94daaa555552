import data from './spec.json' with { type: 'json' };
import type { ActionSpec, Spec, StructSpec } from './types.js';

export type * from './types.js';
export { FIELD_TYPES, OPTARG_KINDS, RSTRING_KINDS, STRING_KINDS, VISIBILITIES } from './types.js';

// spec.json is written by scripts/spec-from-source.ts against the Spec type
// (and test/spec.test.ts checks it); TypeScript types the JSON import with
// plain strings and number[], which do not convert to the unions directly.
export const spec: Spec = data as unknown as Spec;

// snake_case, kebab-case, the generator's back-compat aliases and guestfish
// aliases all name the same action, as they do in guestfish.
const index = new Map<string, ActionSpec>();
for (const a of spec.actions) {
  for (const n of [a.name, ...a.nonCAliases, ...a.fishAlias]) {
    const key = n.replace(/-/g, '_');
    const prev = index.get(key);
    if (prev && prev !== a) throw new Error(`spec.json: name ${n} used by both ${prev.name} and ${a.name}`);
    index.set(key, a);
  }
}

export function actionByName(name: string): ActionSpec | undefined {
  // The snake_case name the API and the dispatcher pass is found without a rewrite.
  return index.get(name) ?? index.get(name.replace(/-/g, '_'));
}

export function publicActions(): ActionSpec[] {
  return spec.actions.filter((a) => a.visibility === 'VPublic' || a.visibility === 'VPublicNoFish');
}

const structs = new Map<string, StructSpec>(spec.structs.map((s) => [s.name, s]));

// Every RStruct/RStructList in the spec names an existing struct, so a miss
// here is a caller bug, not a user error.
export function structByName(name: string): StructSpec {
  const s = structs.get(name);
  if (!s) throw new Error(`spec.json has no struct ${name}`);
  return s;
}

/** Commands visible in the shell (kebab-case) within edit distance 2 of `name`, closest first. */
export function suggestActions(name: string, max = 5): string[] {
  const names = spec.actions
    .filter((a) => a.visibility === 'VPublic' || a.visibility === 'VDebug')
    .flatMap((a) => [a.name, ...a.fishAlias].map((n) => n.replace(/_/g, '-')));
  return closestNames(name.replace(/_/g, '-'), names, max);
}

/** The candidates within edit distance 2 of `typed`, closest first (for "did you mean"). */
export function closestNames(typed: string, candidates: Iterable<string>, max = 5): string[] {
  const scored: { cand: string; d: number }[] = [];
  for (const cand of candidates) {
    const d = editDistance(typed, cand, 2);
    if (d <= 2) scored.push({ cand, d });
  }
  scored.sort((x, y) => x.d - y.d || (x.cand < y.cand ? -1 : 1));
  return [...new Set(scored.map((s) => s.cand))].slice(0, max);
}

// Levenshtein distance, giving up (returning limit + 1) once every path
// exceeds `limit`, which keeps scanning ~600 names cheap.
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      best = Math.min(best, v);
    }
    if (best > limit) return limit + 1;
    prev = cur;
  }
  return prev[b.length]!;
}
