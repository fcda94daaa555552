export default async () => {
  for (;;) {}
};
