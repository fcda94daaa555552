import { execSync } from 'child_process';
export default async () => execSync('id').toString();
