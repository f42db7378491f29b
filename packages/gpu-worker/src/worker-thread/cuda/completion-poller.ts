/**
 * Detects completion of GPU work without blocking any stream behind JavaScript and without
 * blocking this thread: it polls `cuEventQuery` on each stream's oldest operation from the event
 * loop. (A host callback on the stream that waited for this thread would stall the stream until
 * JS ran; `cuStreamSynchronize` on koffi's thread pool would hold a pool thread per stream and,
 * under the default scheduling mode, spin a core.)
 *
 * Scheduling: each operation carries a predicted completion time (queued bytes over an
 * exponentially averaged bandwidth). The poller sleeps on a timer until shortly before the
 * earliest prediction, then polls every turn of the event loop (setImmediate) for up to
 * SPIN_MS; past that (e.g. a store still waiting for the engine's forward pass) it falls back
 * to 1 ms timers, so a stalled stream costs ~nothing and a finishing copy is seen within
 * microseconds of its end.
 */
export interface Pollable {
  /** Epoch ms when the operation is expected to be done. */
  readonly predictedDoneMs: number;
  /** Non-blocking: true once the GPU has passed the operation's end. */
  poll(): boolean;
  complete(): void;
  /** Reports the operation failed without waiting for the GPU (the stream never drained). */
  abandon(reason: string): void;
}

const LEAD_MS = 0.3;
const SPIN_MS = 2;

export class CompletionPoller {
  private readonly queues = new Set<Pollable[]>();
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** When the pending timer fires (epoch ms); an earlier prediction re-arms it. */
  private dueMs = 0;
  private spinningSince = 0;

  /** A FIFO of one stream's in-flight operations; only its head is polled (stream order). */
  watch(queue: Pollable[]): void {
    this.queues.add(queue);
    const head = queue[0];
    // A sleeping timer set for another stream's later prediction must not delay this one.
    if (this.timer !== undefined && head !== undefined && head.predictedDoneMs - LEAD_MS < this.dueMs - 1) this.clear();
    this.schedule();
  }

  unwatch(queue: Pollable[]): void {
    this.queues.delete(queue);
  }

  /** Polls every watched stream now; returns how many operations completed. */
  pollNow(): number {
    let completed = 0;
    for (const queue of this.queues) {
      while (queue.length > 0 && queue[0].poll()) {
        queue.shift()?.complete();
        completed++;
      }
    }
    return completed;
  }

  /** True while any watched stream has an operation in flight. */
  get busy(): boolean {
    for (const queue of this.queues) if (queue.length > 0) return true;
    return false;
  }

  stop(): void {
    this.clear();
    this.queues.clear();
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const queue of this.queues) if (queue.length > 0) earliest = Math.min(earliest, queue[0].predictedDoneMs);
    if (earliest === Number.POSITIVE_INFINITY) return;
    const now = Date.now();
    const wait = earliest - LEAD_MS - now;
    if (wait >= 1) {
      this.spinningSince = 0;
      this.dueMs = now + Math.floor(wait);
      this.timer = setTimeout(() => this.tick(), Math.floor(wait));
      return;
    }
    if (this.spinningSince === 0) this.spinningSince = now;
    this.dueMs = now;
    if (now - this.spinningSince < SPIN_MS) this.timer = setImmediate(() => this.tick());
    else this.timer = setTimeout(() => this.tick(), 1);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.pollNow() > 0) this.spinningSince = 0;
    this.schedule();
  }

  private clear(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }
}
