import type { AttributeValue, HrTime } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
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
 * Keeps the most recent finished request trees in memory for the built-in viewer (drain
 * thread only). A span processor next to the exporter: every sampled span that ends goes into
 * a fixed ring of recent spans, an array store and nothing else, because this runs for every
 * span on the drain's hot path. Trees are assembled only when someone asks (`list`): spans are
 * grouped by trace, and a trace is shown once its `request` root has ended (the root closes
 * last; a late child that ends after it still lands in the ring and is shown with it).
 *
 * A tree whose older spans were overwritten is never shown half: the ring remembers the
 * latest end time among overwritten spans, and since every child ends at or after its root's
 * start, a root that started after that time has lost nothing.
 */
export class RecentTraces implements SpanProcessor {
  private readonly ring: (ReadableSpan | undefined)[];
  /** Spans ever seen; the next write goes to `written % capacity`. */
  private written = 0;
  private overwrittenEnd: HrTime = [0, 0];

  constructor(
    private readonly maxTrees = 200,
    /** Spans kept; room for `maxTrees` trees of 16 spans by default. */
    capacity = maxTrees * 16,
  ) {
    this.ring = new Array(Math.max(1, capacity)).fill(undefined);
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
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
    return Promise.resolve();
  }
}
