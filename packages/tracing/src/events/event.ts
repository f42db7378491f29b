import type { CanonicalEventType, EVENT_TYPES, EventTypeName, EventTypeRef } from './event-types.js';
import type { MetaOf } from './field-kinds.js';

/** Seconds and nanoseconds since the Unix epoch; the OTel `HrTime` shape. */
export type EpochTime = [seconds: number, nanoseconds: number];

/** W3C trace context captured on the publishing thread. Only these two headers travel. */
export interface TraceCarrier {
  readonly traceparent: string;
  readonly tracestate?: string;
}

export type EventMeta<T extends EventTypeRef> = MetaOf<(typeof EVENT_TYPES)[CanonicalEventType<T>]['meta']>;

/** What a producer supplies besides type and metadata. */
export interface PublishOptions {
  /** Unique per store/retrieve/lookup operation; 0 when not an operation. */
  readonly opId?: number;
  /** Tensor-parallel rank / worker id; omitted when it does not apply. */
  readonly workerId?: number;
  /** Trace context to carry; validated, ignored when invalid. */
  readonly trace?: TraceCarrier;
  /**
   * Explicit timestamp. Only GPU-ordered events set it (the time the stream reached that
   * point); every other event is stamped at publish time.
   */
  readonly time?: EpochTime;
}

/** An event as delivered to subscribers on the drain thread. */
export interface KvmpEventOf<T extends EventTypeName> {
  readonly type: T;
  /** Ring ticket: dispatch order. */
  readonly seq: number;
  readonly sessionId: string;
  readonly opId: number;
  /** `undefined` when the producer gave none. */
  readonly workerId: number | undefined;
  /** Publish time (GPU-ordered events: stream time), seconds + nanoseconds since the epoch. */
  readonly time: EpochTime;
  readonly meta: EventMeta<T>;
  readonly trace: TraceCarrier | undefined;
  /** Id of the publishing thread's publisher (diagnostics only). */
  readonly producerId: number;
}

/** Any event: a discriminated union on `type`, so `switch (event.type)` narrows `meta`. */
export type KvmpEvent = { [T in EventTypeName]: KvmpEventOf<T> }[EventTypeName];

/** Nanoseconds since the epoch as a bigint (exact). */
export function epochTimeToNs(time: EpochTime): bigint {
  return BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);
}

/** Milliseconds since the epoch as a float (sub-microsecond precision is lost). */
export function epochTimeToMs(time: EpochTime): number {
  return time[0] * 1e3 + time[1] / 1e6;
}
