// Logs 30 MB lines until something stops it: each line is copied to the host.
import type { RecipeContext } from 'guestsh';
export default async ({ log }: RecipeContext) => {
  const line = 'x'.repeat(30_000_000);
  for (let i = 0; i < 200; i++) log(line);
  return 'logged 6 GB';
};
