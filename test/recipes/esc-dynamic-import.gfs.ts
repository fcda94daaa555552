export default async () => {
  const net = await import('node:net');
  return net.createConnection(80, '127.0.0.1');
};
