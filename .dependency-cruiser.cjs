// guestsh's layering, as rules dependency-cruiser checks (test/layering.test.ts
// runs them in the unit tests; `npm run layering` prints the violations).
//
// Layers, bottom first. A module may import its own layer and the layers
// listed before it, nothing after: imports only point down. Within one
// layer, no import cycles either (the no-circular rule).
const layers = [
  ['spec', '^src/spec/'],
  ['guests', '^guests/'],
  ['runtime-base', '^src/runtime/(errors|cache|flock|tool)\\.ts$'],
  ['protocol', '^src/runtime/protocol/'],
  ['appliance', '^src/runtime/appliance/'],
  ['qemu', '^src/runtime/qemu/'],
  ['mount', '^src/runtime/mount/'],
  ['session', '^src/runtime/session/'],
  ['open', '^src/runtime/open/'],
  ['recipe', '^src/runtime/recipe/'],
  ['stdlib', '^src/stdlib/'],
  ['batch', '^src/runtime/batch/'],
  ['commands', '^src/commands/'],
  ['repl', '^src/repl/'],
  ['entry', '^src/(cli|remote-cli|index)\\.ts$'],
];

// Every module of src/ and guests/ must sit in a layer (see the unlayered rule).
// Layers that sit beside each other rather than on top: neither may import the other.
const siblings = [
  ['protocol', 'appliance'],
  ['recipe', 'stdlib'],
];

// stdlib modules run inside the recipe sandbox: they may use the spec's
// types and each other, nothing of the host side.
const stdlibMayUse = ['spec', 'stdlib'];

const pathOf = Object.fromEntries(layers);
const rules = [];
layers.forEach(([name, path], i) => {
  const above = layers.slice(i + 1).map(([, p]) => p);
  if (above.length) {
    rules.push({
      name: `${name}-imports-only-down`,
      comment: `${name} may import only the layers below it`,
      severity: 'error',
      from: { path },
      to: { path: above },
    });
  }
});
for (const [a, b] of siblings) {
  rules.push({
    name: `${a}-not-${b}`,
    comment: `${a} and ${b} are side by side; neither imports the other`,
    severity: 'error',
    from: { path: pathOf[a] },
    to: { path: pathOf[b] },
  });
}
rules.push({
  name: 'stdlib-runs-in-the-sandbox',
  comment: 'the standard library runs inside isolated-vm and may use only the spec and itself',
  severity: 'error',
  from: { path: pathOf.stdlib },
  to: { pathNot: stdlibMayUse.map((l) => pathOf[l]) },
});
rules.push({
  name: 'unlayered',
  comment: 'a module outside every layer escapes the rules: add its folder to the layer table',
  severity: 'error',
  from: { pathNot: layers.map(([, p]) => p) },
  to: {},
});
rules.push({
  name: 'no-circular',
  comment: 'no import cycles, type-only ones included',
  severity: 'error',
  from: {},
  to: { circular: true },
});
rules.push({
  name: 'not-to-unresolvable',
  comment: 'an import that does not resolve is a typo or a missing file',
  severity: 'error',
  from: {},
  to: { couldNotResolve: true },
});

const config = {
  forbidden: rules,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
module.exports = config;
