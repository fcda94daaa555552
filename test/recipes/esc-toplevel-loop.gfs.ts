while (true) {}
export default async () => {};
