import type { LeakReason } from './leak-reason.js';

/** Counters of the request tracing subscriber (cumulative since start, except the `open*` gauges). */
export interface RequestTracingStats {
  /** Sessions with an open root, an open child, or in-flight work. */
  readonly openSessions: number;
  /** Spans started and not yet ended (roots and children). */
  readonly openSpans: number;
  readonly rootsStarted: number;
  readonly rootsEnded: number;
  readonly childrenStarted: number;
  readonly childrenEnded: number;
  /** Children ended with ERROR because their END reported failure. */
  readonly failedChildren: number;
  /** Children that started after their root closed (nested under the closed root). */
  readonly lateChildren: number;
  /** END events with no matching START (logged at debug, never fatal). */
  readonly unmatchedEnds: number;
  /** Spans ended by the sweep or at shutdown. */
  readonly leakedSpans: number;
  readonly leakedByReason: Readonly<Record<LeakReason, number>>;
  /** Closed sessions remembered so that late children still find their root. */
  readonly closedSessions: number;
}

/** Message posted on `RequestTracingOptions.statsChannel`. */
export interface RequestTracingStatsMessage {
  readonly kind: 'sweep' | 'shutdown';
  readonly stats: RequestTracingStats;
}
