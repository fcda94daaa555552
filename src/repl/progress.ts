// A one-line progress bar on stderr for calls that report progress, shown
// only once a call has run for about a second (short calls never flicker).

export class ProgressBar {
  private readonly started = Date.now();
  private shown = false;
  private last = 0;

  update(position: bigint, total: bigint): void {
    if (!process.stderr.isTTY || total <= 0n) return;
    const now = Date.now();
    if (now - this.started < 1000 || now - this.last < 100) return;
    this.last = now;
    this.shown = true;
    const frac = Math.min(1, Number(position) / Number(total));
    const cols = Math.max(20, (process.stderr.columns ?? 80) - 20);
    const filled = Math.round(frac * cols);
    const elapsed = (now - this.started) / 1000;
    const eta = frac > 0 ? Math.max(0, Math.round(elapsed / frac - elapsed)) : 0;
    const mmss = `${String(Math.floor(eta / 60)).padStart(2, '0')}:${String(eta % 60).padStart(2, '0')}`;
    process.stderr.write(`\r${String(Math.floor(frac * 100)).padStart(3)}% [${'#'.repeat(filled)}${'-'.repeat(cols - filled)}] ${mmss} ETA`);
  }

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}
