import type { SpanExportOptions } from '../otel/exporter-options.js';

/**
 * Options of the request tracing subscriber. Structured-clonable: they travel to the
 * drain thread inside a `SubscriberSpec`.
 */
export interface RequestTracingOptions extends SpanExportOptions {
  /** A session idle this long with a span or in-flight work still open is swept. Default 600,000 (10 min). */
  readonly ttlMs?: number;
  /** How often the sweep runs (on the pipeline's periodic hook, so at most that often). Default 30,000. */
  readonly sweepIntervalMs?: number;
  /** Closed roots remembered so that late children nest under them. Default 65,536. */
  readonly maxClosedSessions?: number;
  /**
   * When set, the subscriber posts its {@link RequestTracingStats} on this BroadcastChannel
   * after every sweep and at shutdown (after the final flush), for tests and diagnostics.
   */
  readonly statsChannel?: string;
  /**
   * Finished request trees kept for the built-in viewer (`/traces`, `kvmp trace`), answered
   * through `recentTraces(pipeline)`: every request at low rates, a sample of at most 50 a
   * second under load. Default 200; 0 keeps none.
   */
  readonly viewerTraces?: number;
}
