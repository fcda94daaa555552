// Returns a 40 MB value: the run's result is copied to the host.
export default async () => 'x'.repeat(40_000_000);
