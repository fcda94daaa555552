export default async () => {
  const hog: string[][] = [];
  for (;;) hog.push(new Array(1_000_000).fill('xxxxxxxxxxxxxxxx'));
};
