export default async () => {
  const x = ;
};
