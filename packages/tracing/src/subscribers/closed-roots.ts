import type { SpanContext } from '@opentelemetry/api';

/**
 * What is remembered of a closed root for late children: its span context only. Keeping the
 * context (which holds the ended root span, attributes and all) would retain every closed
 * root for the TTL.
 */
interface ClosedRoot {
  readonly sessionId: string;
  readonly root: SpanContext;
  readonly closedNs: number;
}

/**
 * Closed request roots by session id, bounded, forgotten oldest first (by count, or by age in
 * `forgetOlderThan`). Drain thread only.
 *
 * Close order lives in a ring beside the map. A Map alone would find its oldest entry with
 * `keys().next()`, which V8 answers by walking past every deleted entry at the front of its
 * table: with one eviction per closed request at 65,536 entries that walk measured 10–30 µs,
 * and it made the drain's throughput sink as the map filled. Here both are O(1).
 */
export class ClosedRoots {
  private readonly byId = new Map<string, ClosedRoot>();
  /** Close order; an entry whose map value was since replaced or deleted is stale and skipped. */
  private readonly order: (ClosedRoot | undefined)[];
  private oldest = 0;
  private length = 0;

  constructor(capacity: number) {
    this.order = new Array(Math.max(1, capacity)).fill(undefined);
  }

  get size(): number {
    return this.byId.size;
  }

  get(sessionId: string): SpanContext | undefined {
    return this.byId.get(sessionId)?.root;
  }

  has(sessionId: string): boolean {
    return this.byId.has(sessionId);
  }

  delete(sessionId: string): void {
    this.byId.delete(sessionId);
  }

  /** Remembers a root that just closed; forgets the oldest when full. */
  add(sessionId: string, root: SpanContext, closedNs: number): void {
    if (this.length === this.order.length) this.forgetOldest();
    const entry: ClosedRoot = { sessionId, root, closedNs };
    this.byId.set(sessionId, entry);
    this.order[(this.oldest + this.length) % this.order.length] = entry;
    this.length++;
  }

  /** Forgets roots closed before `cutoffNs`. */
  forgetOlderThan(cutoffNs: number): void {
    while (this.length > 0) {
      const entry = this.order[this.oldest];
      if (entry !== undefined && entry.closedNs >= cutoffNs) return;
      this.forgetOldest();
    }
  }

  clear(): void {
    this.byId.clear();
    this.order.fill(undefined);
    this.oldest = 0;
    this.length = 0;
  }

  private forgetOldest(): void {
    const entry = this.order[this.oldest];
    if (entry !== undefined && this.byId.get(entry.sessionId) === entry) this.byId.delete(entry.sessionId);
    this.order[this.oldest] = undefined;
    this.oldest = (this.oldest + 1) % this.order.length;
    this.length--;
  }
}
