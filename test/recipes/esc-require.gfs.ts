export default async () => {
  // @ts-ignore
  const fs = require('fs');
  return fs.readFileSync('/etc/passwd', 'utf8');
};
