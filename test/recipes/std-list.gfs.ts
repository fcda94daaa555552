import { listOperations, defaultOperations } from 'guestsh/sysprep';
import * as customize from 'guestsh/customize';
import * as firstboot from 'guestsh/firstboot';
import * as hardening from 'guestsh/hardening';
import { inspectReport } from 'guestsh/inspect';
import { defineRecipe } from 'guestsh';
export default defineRecipe(async ({ log }) => {
  log(typeof customize.hostname, typeof firstboot.addScript, typeof hardening.harden, typeof inspectReport);
  return { all: listOperations().length, defaults: defaultOperations.length };
});
