// Test dispatcher: calls guestsh/<module>.<fn>({ g, log }, ...JSON.parse(args)) inside the sandbox.
import type { RecipeContext } from 'guestsh';
import * as sysprep from 'guestsh/sysprep';
import * as customize from 'guestsh/customize';
import * as firstboot from 'guestsh/firstboot';
import * as hardening from 'guestsh/hardening';
import * as inspect from 'guestsh/inspect';

const modules: Record<string, Record<string, unknown>> = { sysprep, customize, firstboot, hardening, inspect };

export default async ({ g, params, log }: RecipeContext) => {
  const fn = modules[params.module!]?.[params.fn!];
  if (typeof fn !== 'function') throw new Error(`no function guestsh/${params.module}.${params.fn}`);
  const args = JSON.parse(params.args ?? '[]') as unknown[];
  if (params.fn === 'edit') {
    // edit takes a function: replace params.from with params.to.
    return fn({ g, log }, args[0], (text: string) => text.split(params.from!).join(params.to!));
  }
  return fn({ g, log }, ...args);
};
