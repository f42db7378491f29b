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

interface Pending {
  readonly spans: TreeInput[];
  readonly firstSeenMs: number;
}

/**
 * Keeps the most recent finished request trees in memory for the built-in viewer (drain
 * thread only). A span processor next to the exporter: it sees every sampled span as it ends,
 * gathers them per trace, and turns a trace into a tree when its `request` root ends (the root
 * closes last: its close waits for in-flight copies). Bounded in trees kept and in traces
 * still gathering.
 */
export class RecentTraces implements SpanProcessor {
  private readonly pending = new Map<string, Pending>();
  /** Oldest first; at most `maxTrees`. */
  private readonly trees: RequestTree[] = [];
  private readonly byTrace = new Map<string, { spans: TreeInput[] }>();

  constructor(
    private readonly maxTrees = 200,
    private readonly maxPendingTraces = 10_000,
    private readonly pendingTtlMs = 10 * 60_000,
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    const input = toTreeInput(span);
    const done = this.byTrace.get(input.traceId);
    if (done !== undefined) {
      // A late child of a tree already shown (it started after its root closed): redraw it.
      done.spans.push(input);
      this.replace(input.traceId, done.spans);
      return;
    }
    let p = this.pending.get(input.traceId);
    if (p === undefined) {
      if (this.pending.size >= this.maxPendingTraces) this.evictPending();
      p = { spans: [], firstSeenMs: Date.now() };
      this.pending.set(input.traceId, p);
    }
    p.spans.push(input);
    if (input.name === ROOT_SPAN_NAME) {
      this.pending.delete(input.traceId);
      this.add(input.traceId, p.spans);
    }
  }

  /** Newest first. */
  list(limit = this.maxTrees): RequestTree[] {
    return this.trees.slice(-limit).reverse();
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.pending.clear();
    return Promise.resolve();
  }

  private add(traceId: string, spans: TreeInput[]): void {
    const [tree] = buildRequestTrees(spans);
    if (tree === undefined) return;
    this.trees.push(tree);
    this.byTrace.set(traceId, { spans });
    while (this.trees.length > this.maxTrees) {
      const old = this.trees.shift();
      if (old !== undefined) this.byTrace.delete(old.traceId);
    }
  }

  private replace(traceId: string, spans: TreeInput[]): void {
    const [tree] = buildRequestTrees(spans);
    const i = this.trees.findIndex((t) => t.traceId === traceId);
    if (tree !== undefined && i >= 0) this.trees[i] = tree;
  }

  /** Drops traces whose root never ended within the TTL, or the oldest when over the bound. */
  private evictPending(): void {
    const cutoff = Date.now() - this.pendingTtlMs;
    for (const [id, p] of this.pending) if (p.firstSeenMs < cutoff) this.pending.delete(id);
    if (this.pending.size >= this.maxPendingTraces) {
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
    }
  }
}
