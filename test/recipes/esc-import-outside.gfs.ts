// Tries to load a host file outside the recipe's directory as a module.
// @ts-ignore
import x from '../../../../../../../../etc/passwd';
export default async () => x;
