import type { AttributeValue, HrTime } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { BoundedFifoMap } from '../collections/bounded-fifo-map.js';
import { buildRequestTrees, type RequestTree, ROOT_SPAN_NAME, type TreeInput } from './request-tree.js';

const STATUS = ['UNSET', 'OK', 'ERROR'] as const;
const ns = (t: HrTime): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);

function toTreeInput(span: ReadableSpan): TreeInput {
  const ctx = span.spanContext();
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    name: span.name,
    startTimeUnixNano: ns(span.startTime),
    endTimeUnixNano: ns(span.endTime),
    attributes: span.attributes as Record<string, AttributeValue>,
    status: { code: STATUS[span.status.code] ?? 'UNSET', message: span.status.message || undefined },
  };
}

const later = (a: HrTime, b: HrTime): boolean => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

/**
 * Keeps recent finished request trees in memory for the built-in viewer (drain thread only).
 * A span processor next to the exporter, so it must cost the drain next to nothing:
 *
 * - **Admission.** A trace is kept only if its `request` root was admitted when it started: all
 *   of them while requests are few, at most `tracesPerSecond` (a token bucket)
 *   under load. A span kept in memory outlives the young generation and gets promoted, which
 *   cost the drain ~4 µs per request when every trace was kept; a human looking at `/traces`
 *   needs a recent sample, not every request of the last second. Every other span costs one
 *   set lookup by trace id.
 * - **Storage.** Spans of admitted traces go into a fixed ring, an array store. Trees are
 *   assembled only when someone asks (`list`): spans grouped by trace, a trace shown once its
 *   root has ended (the root closes last; a late child that ends after it still lands in the
 *   ring and is shown with it). A tree whose older spans were overwritten is never shown
 *   half: the ring remembers the latest end time among overwritten spans, and since every
 *   child ends at or after its root's start, a root that started after that time lost nothing.
 */
export class RecentTraces implements SpanProcessor {
  private readonly ring: (ReadableSpan | undefined)[];
  /** Spans ever kept; the next write goes to `written % capacity`. */
  private written = 0;
  private overwrittenEnd: HrTime = [0, 0];
  /** Admitted trace ids, bounded: the oldest admission is forgotten first. */
  private readonly admitted: BoundedFifoMap<string, true>;
  private readonly burst: number;
  private tokens: number;
  private tokensAtMs: number;

  constructor(
    private readonly maxTrees = 200,
    /** Spans kept; room for `maxTrees` trees of 16 spans by default. */
    capacity = maxTrees * 16,
    /** Traces admitted per second once a burst (the larger of this and `maxTrees`) is spent. */
    private readonly tracesPerSecond = 50,
    private readonly clock: () => number = Date.now,
  ) {
    this.ring = new Array(Math.max(1, capacity)).fill(undefined);
    this.admitted = new BoundedFifoMap(maxTrees * 4);
    this.burst = Math.max(maxTrees, tracesPerSecond);
    this.tokens = this.burst;
    this.tokensAtMs = clock();
  }

  onStart(span: ReadableSpan): void {
    if (span.name !== ROOT_SPAN_NAME) return;
    const nowMs = this.clock();
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.tokensAtMs) * this.tracesPerSecond) / 1000);
    this.tokensAtMs = nowMs;
    if (this.tokens < 1) return;
    this.tokens--;
    const traceId = span.spanContext().traceId;
    if (!this.admitted.has(traceId)) this.admitted.set(traceId, true);
  }

  onEnd(span: ReadableSpan): void {
    if (!this.admitted.has(span.spanContext().traceId)) return;
    const i = this.written++ % this.ring.length;
    const old = this.ring[i];
    if (old !== undefined && later(old.endTime, this.overwrittenEnd)) this.overwrittenEnd = old.endTime;
    this.ring[i] = span;
  }

  /** Newest first (by the time each root ended). */
  list(limit = this.maxTrees): RequestTree[] {
    const n = Math.min(this.written, this.ring.length);
    const byTrace = new Map<string, ReadableSpan[]>();
    const roots: ReadableSpan[] = [];
    for (let k = 1; k <= n; k++) {
      const span = this.ring[(this.written - k) % this.ring.length];
      if (span === undefined) continue;
      const traceId = span.spanContext().traceId;
      let spans = byTrace.get(traceId);
      if (spans === undefined) {
        spans = [];
        byTrace.set(traceId, spans);
      }
      spans.push(span);
      if (span.name === ROOT_SPAN_NAME && later(span.startTime, this.overwrittenEnd)) roots.push(span);
    }
    // Several requests may share a trace (one upstream trace fanning out): each trace's
    // spans are assembled once, into every complete tree they hold.
    const out: RequestTree[] = [];
    const complete = new Set(roots.map((r) => r.spanContext().spanId));
    for (const root of roots) {
      if (out.length >= limit) break;
      const traceId = root.spanContext().traceId;
      const spans = byTrace.get(traceId);
      if (spans === undefined) continue;
      byTrace.delete(traceId);
      for (const tree of buildRequestTrees(spans.reverse().map(toTreeInput))) {
        if (out.length < limit && complete.has(tree.spans[0].spanId)) out.push(tree);
      }
    }
    return out;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.ring.fill(undefined);
    this.written = 0;
    this.admitted.clear();
    return Promise.resolve();
  }
}
