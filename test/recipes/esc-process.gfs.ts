export default async () => {
  // @ts-ignore
  return process.env.HOME;
};
