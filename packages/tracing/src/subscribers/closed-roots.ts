import type { SpanContext } from '@opentelemetry/api';
import { BoundedFifoMap } from '../collections/bounded-fifo-map.js';

/**
 * What is remembered of a closed root for late children: its span context only. Keeping the
 * context (which holds the ended root span, attributes and all) would retain every closed
 * root for the TTL.
 */
interface ClosedRoot {
  readonly root: SpanContext;
  readonly closedNs: number;
}

/**
 * Closed request roots by session id, bounded, forgotten oldest first (by count, or by age in
 * `forgetOlderThan`). One eviction per closed request, so it must be O(1): see
 * {@link BoundedFifoMap}. Drain thread only.
 */
export class ClosedRoots {
  private readonly bySession: BoundedFifoMap<string, ClosedRoot>;

  constructor(capacity: number) {
    this.bySession = new BoundedFifoMap(capacity);
  }

  get size(): number {
    return this.bySession.size;
  }

  get(sessionId: string): SpanContext | undefined {
    return this.bySession.get(sessionId)?.root;
  }

  has(sessionId: string): boolean {
    return this.bySession.has(sessionId);
  }

  delete(sessionId: string): void {
    this.bySession.delete(sessionId);
  }

  /** Remembers a root that just closed; forgets the oldest when full. */
  add(sessionId: string, root: SpanContext, closedNs: number): void {
    this.bySession.set(sessionId, { root, closedNs });
  }

  /** Forgets roots closed before `cutoffNs`. */
  forgetOlderThan(cutoffNs: number): void {
    this.bySession.forgetOldestWhile((closed) => closed.closedNs < cutoffNs);
  }

  clear(): void {
    this.bySession.clear();
  }
}
