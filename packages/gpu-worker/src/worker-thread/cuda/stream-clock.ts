import { nowNsFloat } from '@kvmp/tracing';
import { CU_EVENT_DEFAULT, CU_STREAM_NON_BLOCKING, type CudaDriver, type CuHandle } from '../../cuda/driver.js';

/** A new reference after this long: cuEventElapsedTime is a float32 of ms, fine-grained only for short spans. */
const REANCHOR_AFTER_NS = 5e9;

/** A reference event with the epoch time at which the GPU recorded it. */
export interface ClockAnchor {
  readonly event: CuHandle;
  readonly ns: number;
  refs: number;
}

/**
 * Converts CUDA event times to epoch time. A reference event is recorded on a dedicated clock
 * stream that never has other work, and synchronised with host clock reads on both sides; its
 * epoch time is the midpoint (error ≤ half that bracket, a few µs). Because that stream is always
 * idle, re-anchoring costs microseconds even while copy streams are busy, so it is done whenever
 * the reference is older than 5 s: timestamps stay at sub-µs float precision and GPU/host clock
 * drift cannot accumulate. Each operation holds the anchor current at its submission (recorded
 * before its events, so elapsed times are ≥ 0); an anchor is destroyed when nothing holds it.
 */
export class StreamClock {
  private readonly stream: CuHandle;
  private current: ClockAnchor;

  constructor(
    private readonly cuda: CudaDriver,
    /** Host epoch ns; injectable for tests. */
    private readonly hostNs: () => number = nowNsFloat,
  ) {
    this.stream = cuda.streamCreate(CU_STREAM_NON_BLOCKING);
    this.current = this.anchor();
  }

  /** The anchor for an operation being submitted now; pair with {@link release}. */
  acquire(): ClockAnchor {
    if (this.hostNs() - this.current.ns > REANCHOR_AFTER_NS) {
      const old = this.current;
      this.current = this.anchor();
      if (old.refs === 0) this.cuda.eventDestroy(old.event);
    }
    this.current.refs++;
    return this.current;
  }

  release(anchor: ClockAnchor): void {
    if (--anchor.refs === 0 && anchor !== this.current) this.cuda.eventDestroy(anchor.event);
  }

  /** Epoch ns (float) at which the GPU reached a completed timing event. */
  epochNs(anchor: ClockAnchor, event: CuHandle): number {
    return anchor.ns + this.cuda.eventElapsedMs(anchor.event, event) * 1e6;
  }

  destroy(): void {
    this.cuda.eventDestroy(this.current.event);
    this.cuda.streamDestroy(this.stream);
  }

  private anchor(): ClockAnchor {
    const event = this.cuda.eventCreate(CU_EVENT_DEFAULT);
    const before = this.hostNs();
    this.cuda.eventRecord(event, this.stream);
    this.cuda.eventSynchronize(event);
    const after = this.hostNs();
    return { event, ns: (before + after) / 2, refs: 0 };
  }
}
