import { nowNsFloat } from '@kvmp/tracing';
import { CU_EVENT_DEFAULT, CU_STREAM_NON_BLOCKING, type CudaDriver, type CuHandle } from '../../cuda/driver.js';

/** Re-anchor (when idle) after this long: cuEventElapsedTime is a float32 of ms, fine-grained only for short spans. */
const REANCHOR_AFTER_NS = 5e9;

/**
 * Converts CUDA event times to epoch time. A reference event is recorded on an otherwise idle
 * clock stream and synchronised, bracketed by host clock reads; its epoch time is the midpoint
 * (error ≤ half the bracket, a few µs). An op's events are then placed with
 * cuEventElapsedTime(reference, event). Events from different streams of one context share a
 * clock, so one reference serves every instance stream.
 */
export class StreamClock {
  private readonly stream: CuHandle;
  private ref: CuHandle;
  private refNs = 0;

  constructor(private readonly cuda: CudaDriver) {
    this.stream = cuda.streamCreate(CU_STREAM_NON_BLOCKING);
    this.ref = cuda.eventCreate(CU_EVENT_DEFAULT);
    this.anchor();
  }

  /** Records and synchronises a new reference; only call when no converted event predates it badly (idle). */
  anchor(): void {
    const before = nowNsFloat();
    this.cuda.eventRecord(this.ref, this.stream);
    this.cuda.eventSynchronize(this.ref);
    const after = nowNsFloat();
    this.refNs = (before + after) / 2;
  }

  /** Re-anchors if the reference is old; call only while no operation is in flight. */
  maybeReanchor(): void {
    if (nowNsFloat() - this.refNs > REANCHOR_AFTER_NS) this.anchor();
  }

  /** Epoch ns (float) at which the GPU reached a completed timing event. */
  epochNs(event: CuHandle): number {
    return this.refNs + this.cuda.eventElapsedMs(this.ref, event) * 1e6;
  }

  destroy(): void {
    this.cuda.eventDestroy(this.ref);
    this.cuda.streamDestroy(this.stream);
  }
}
