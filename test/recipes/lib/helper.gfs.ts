// Fixture helper module.
export function double(n: number): number {
  return n * 2;
}

export function fail(why: string): never {
  throw new TypeError(`helper failed: ${why}`);
}
