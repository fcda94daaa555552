// Classic sandbox escape attempts through constructors of bridged values.
import type { RecipeContext } from 'guestsh';
export default async ({ g, log }: RecipeContext) => {
  const F = (g.version as any).constructor.constructor;
  const p = F('return typeof process === "undefined" ? "no process" : process')();
  const q = (log as any).constructor('return this')();
  return { p: String(p), hasRequire: typeof (q as any).require, hasProcess: typeof (q as any).process };
};
