import { readFileSync } from 'node:fs';
export default async () => readFileSync('/etc/passwd', 'utf8');
