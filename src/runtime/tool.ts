// Running a host tool (qemu-img, supermin, dpkg-query) through execa, which
// is loaded on first use: importing it costs ~100 ms on a quiet machine and
// several times that under load, and most guestsh invocations that only
// start and end (--remote, --version, help, check) never run a tool.

/** Runs `file` with `args`; resolves with its output, rejects with execa's error (stderr included) if it fails. */
export async function runTool(file: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  const { execa } = await import('execa');
  const { stdout, stderr } = await execa(file, args);
  return { stdout, stderr };
}
