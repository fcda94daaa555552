// isolated-vm reads a bridge call's options through the prototype chain:
// inherited `reference`/`externalCopy` would hand the recipe host references
// or make every call fail. The calls must go on returning plain copies.
import type { RecipeContext } from 'guestsh';
for (const key of ['reference', 'externalCopy', 'promise', 'timeout']) {
  Object.defineProperty(Object.prototype, key, { get: () => (key === 'timeout' ? 1 : true), configurable: true });
}
export default async ({ g }: RecipeContext) => {
  const v = await g.version();
  const ls = await g.ls('/');
  return { major: typeof v.major, plain: Object.getPrototypeOf(v) === Object.prototype, isArray: Array.isArray(ls), hasDeref: typeof (v as { deref?: unknown }).deref };
};
