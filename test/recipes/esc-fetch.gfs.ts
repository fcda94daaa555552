export default async () => {
  // @ts-ignore
  const r = await fetch('http://127.0.0.1:1/');
  return r.status;
};
