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

interface Gathering {
  readonly spans: ReadableSpan[];
  readonly firstSeenMs: number;
}

/**
 * Keeps the most recent finished request trees in memory for the built-in viewer (drain
 * thread only). A span processor next to the exporter: it sees every sampled span as it ends,
 * gathers them per trace, and files a trace as finished when its `request` root ends (the root
 * closes last: its close waits for in-flight copies). It only keeps references on the hot path;
 * trees are built when someone asks (`list`). Bounded in traces kept and traces gathering.
 */
export class RecentTraces implements SpanProcessor {
  private readonly gathering = new Map<string, Gathering>();
  /** Finished traces, oldest first; at most `maxTrees`. Late children are appended in place. */
  private readonly finished = new Map<string, ReadableSpan[]>();

  constructor(
    private readonly maxTrees = 200,
    private readonly maxGathering = 10_000,
    private readonly gatheringTtlMs = 10 * 60_000,
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    const traceId = span.spanContext().traceId;
    const done = this.finished.get(traceId);
    if (done !== undefined) {
      // A late child of a finished tree (it started after its root closed): shown with it.
      done.push(span);
      return;
    }
    let g = this.gathering.get(traceId);
    if (g === undefined) {
      if (this.gathering.size >= this.maxGathering) this.evictGathering();
      g = { spans: [], firstSeenMs: Date.now() };
      this.gathering.set(traceId, g);
    }
    g.spans.push(span);
    if (span.name === ROOT_SPAN_NAME) {
      this.gathering.delete(traceId);
      this.finished.set(traceId, g.spans);
      if (this.finished.size > this.maxTrees) {
        const oldest = this.finished.keys().next().value;
        if (oldest !== undefined) this.finished.delete(oldest);
      }
    }
  }

  /** Newest first. */
  list(limit = this.maxTrees): RequestTree[] {
    const all = [...this.finished.values()];
    const out: RequestTree[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      const [tree] = buildRequestTrees(all[i].map(toTreeInput));
      if (tree !== undefined) out.push(tree);
    }
    return out;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.gathering.clear();
    return Promise.resolve();
  }

  /** Drops traces whose root never ended within the TTL, or the oldest when over the bound. */
  private evictGathering(): void {
    const cutoff = Date.now() - this.gatheringTtlMs;
    for (const [id, g] of this.gathering) if (g.firstSeenMs < cutoff) this.gathering.delete(id);
    if (this.gathering.size >= this.maxGathering) {
      const oldest = this.gathering.keys().next().value;
      if (oldest !== undefined) this.gathering.delete(oldest);
    }
  }
}
