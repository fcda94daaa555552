import type { Shell } from './shell.js';
export async function interactiveShell(shell: Shell, banner: string): Promise<boolean> {
  void shell; void banner;
  return true;
}
