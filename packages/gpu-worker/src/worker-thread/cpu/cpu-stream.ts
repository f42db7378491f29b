import { now } from '@kvmp/tracing';
import type { ResolvedCopy } from '../../layout/copy-plan.js';
import { createCpuEvent, signalCpuEvent, waitCpuEvent } from '../../shared/cpu-event.js';
import type { OpReporter } from '../../shared/op-reporter.js';
import { copyChunk } from './chunk-copy.js';

interface Job {
  readonly copy: ResolvedCopy;
  readonly reporter: OpReporter;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The cpu backend's "CUDA stream" for one instance: a FIFO of copies run on the GPU worker
 * thread. One chunk is copied per macrotask, so new submissions, other instances' streams and
 * completions interleave with a long copy instead of waiting behind it, while this instance's
 * operations still run strictly in submission order.
 */
export class CpuStream {
  private readonly queue: Job[] = [];
  private running = false;
  private abort = new AbortController();
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};

  constructor(
    private readonly layers: readonly Uint8Array[],
    private readonly host: () => readonly Uint8Array[],
  ) {}

  enqueue(copy: ResolvedCopy, reporter: OpReporter): void {
    this.queue.push({ copy, reporter });
    if (!this.running) {
      this.running = true;
      this.idle = new Promise((resolve) => {
        this.markIdle = resolve;
      });
      void this.pump();
    }
  }

  /** Fails every queued operation, stops the running one at its next chunk boundary, waits for that. */
  async cancelAll(reason: string): Promise<void> {
    this.abort.abort(reason);
    for (const job of this.queue.splice(this.running ? 1 : 0)) job.reporter.fail('cancelled', reason);
    await this.idle;
    this.abort = new AbortController();
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      const job = this.queue[0];
      await this.run(job, this.abort.signal);
      this.queue.shift();
    }
    this.running = false;
    this.markIdle();
  }

  private async run({ copy, reporter }: Job, signal: AbortSignal): Promise<void> {
    const done = createCpuEvent();
    const cancelled = (): void => {
      const t = now();
      signalCpuEvent(done);
      reporter.finish({
        ok: false,
        failure: 'cancelled',
        error: String(signal.reason),
        start: t,
        end: t,
        doneEvent: done,
      });
    };
    try {
      // Like cuStreamWaitEvent: the stream (this instance's FIFO) waits; the thread does not.
      if (copy.waitEvent !== undefined && !(await waitCpuEvent(copy.waitEvent, signal))) return cancelled();
      if (signal.aborted) return cancelled();
      const start = now();
      reporter.started(start);
      const host = this.host();
      for (let c = 0; c < copy.numChunks; c++) {
        if (c > 0) await yieldToLoop();
        if (signal.aborted) {
          signalCpuEvent(done);
          reporter.finish({
            ok: false,
            failure: 'cancelled',
            error: String(signal.reason),
            start,
            end: now(),
            doneEvent: done,
          });
          return;
        }
        copyChunk(copy, c, this.layers, host[copy.chunkSegments[c]]);
      }
      signalCpuEvent(done);
      reporter.finish({ ok: true, start, end: now(), doneEvent: done });
    } catch (error) {
      const t = now();
      signalCpuEvent(done);
      reporter.finish({
        ok: false,
        failure: 'copy_failed',
        error: (error as Error).message,
        start: t,
        end: t,
        doneEvent: done,
      });
    }
  }
}
