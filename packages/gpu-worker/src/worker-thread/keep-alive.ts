/**
 * Keeps the GPU worker thread's event loop alive while operations are pending. Neither
 * `Atomics.waitAsync` (cpu event waits) nor koffi hold the loop open, and a thread whose loop
 * empties exits with its promises unsettled; a ref'd timer while work is pending prevents that
 * without costing anything when idle.
 */
export class KeepAlive {
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  acquire(): void {
    if (this.count++ === 0) this.timer = setInterval(() => {}, 1 << 30);
  }

  release(): void {
    if (this.count === 0) return;
    if (--this.count === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get pending(): number {
    return this.count;
  }
}
