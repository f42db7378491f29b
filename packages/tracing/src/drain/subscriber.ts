import type { KvmpEvent } from '../events/event.js';
import type { EventTypeRef } from '../events/event-types.js';
import type { RingHandle } from '../ring/ring-layout.js';

/**
 * A consumer of events. Lives on the drain thread and is called only from it, so it needs
 * no locks. Functions cannot cross threads: subscribers are declared by module (a
 * {@link SubscriberSpec}) and built on the drain thread by the module's factory.
 */
export interface Subscriber {
  /** Stable name, used in error counts and logs. */
  readonly name: string;
  /** Event types delivered to {@link onEvent}; `'all'` for every type. */
  readonly types: readonly EventTypeRef[] | 'all';
  onEvent(event: KvmpEvent): void;
  /** Called every periodic interval, even when no events arrive. */
  onPeriodic?(nowNs: number): void;
  /** Called once at stop, after everything published before stop was delivered. */
  shutdown?(): void | Promise<void>;
  /**
   * Answers a question from the owner thread (`pipeline.query(name, request)`), e.g. a metrics
   * scrape. Runs on the drain thread between events; the answer must be structured-clonable.
   */
  onQuery?(request: unknown): unknown;
}

/** Health of the pipeline as seen from the drain thread. */
export interface PipelineSelfMetrics {
  /** Tickets reserved but not yet consumed. */
  readonly queueDepth: number;
  /** Age in ns of the oldest undelivered event; 0 when the ring is empty. */
  readonly drainLagNs: number;
  readonly delivered: number;
  /** Events dropped because the ring was full, since start of the ring. */
  readonly dropped: number;
  /** Records skipped because their producer died mid-publish. */
  readonly abandoned: number;
  /** Exceptions thrown by each subscriber (event handlers, periodic hooks, shutdown). */
  readonly subscriberErrors: Readonly<Record<string, number>>;
  /** CPU time the drain thread has used since it started (Linux only; else absent). */
  readonly drainCpuNs?: number;
  /** Time the drain thread was runnable but had no CPU: contention from other threads (Linux only). */
  readonly drainRunQueueWaitNs?: number;
}

export interface DrainLogger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** What the drain thread offers a subscriber factory. */
export interface DrainContext {
  /** The ring itself, e.g. to re-publish derived events from the drain thread. */
  readonly ring: RingHandle;
  readonly log: DrainLogger;
  selfMetrics(): PipelineSelfMetrics;
  /**
   * Registers an exporter flush. Flushes run after every subscriber's shutdown, so spans
   * ended during shutdown are exported too.
   */
  onFlush(flush: () => Promise<void>): void;
}

export type SubscriberFactory<O = never> = (options: O, context: DrainContext) => Subscriber | Promise<Subscriber>;

/** A subscriber declared across threads: module URL or specifier, export name, JSON options. */
export interface SubscriberSpec {
  /**
   * Absolute `file:` URL, or a specifier resolvable from `@kvmp/tracing`. From your own
   * package pass `import.meta.resolve('./my-subscriber.js')`.
   */
  readonly module: string;
  /** Named export holding the {@link SubscriberFactory}; defaults to `default`. */
  readonly export?: string;
  /** Structured-clonable options passed to the factory. */
  readonly options?: unknown;
  /**
   * Lower loads first (default 0). Providers other subscribers use while they load — the
   * metrics subscriber installs the drain thread's MeterProvider — declare a negative order.
   */
  readonly loadOrder?: number;
}
