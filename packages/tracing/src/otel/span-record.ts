import { type Attributes, type AttributeValue, type HrTime, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** Version of the JSON-lines span format; bump on any incompatible change. */
export const SPAN_RECORD_VERSION = 1;

export type SpanKindName = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
export type StatusCodeName = 'UNSET' | 'OK' | 'ERROR';

/**
 * One exported span as written to a JSON-lines file (one object per line) and as returned
 * by `readSpanFile`. Times are exact nanoseconds since the epoch: decimal strings in the
 * file, `bigint` here. Attribute values keep their JavaScript types (string, number,
 * boolean, or homogeneous arrays of those); JavaScript has one number type, so an integral
 * double such as `hit_rate = 1` is written as `1`.
 */
export interface SpanRecord {
  readonly v: number;
  readonly traceId: string;
  readonly spanId: string;
  /** Absent for a trace root (no local or remote parent). */
  readonly parentSpanId?: string;
  readonly traceState?: string;
  /** W3C trace flags of the span (1 = sampled; only sampled spans are exported). */
  readonly traceFlags: number;
  readonly name: string;
  readonly kind: SpanKindName;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  readonly attributes: Attributes;
  readonly status: { readonly code: StatusCodeName; readonly message?: string };
  readonly events: readonly {
    readonly name: string;
    readonly timeUnixNano: bigint;
    readonly attributes: Attributes;
  }[];
  readonly links: readonly { readonly traceId: string; readonly spanId: string; readonly attributes: Attributes }[];
  readonly resource: Attributes;
  readonly scope: { readonly name: string; readonly version?: string };
  readonly droppedAttributesCount: number;
}

const KIND_NAMES: Record<SpanKind, SpanKindName> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const STATUS_NAMES: Record<SpanStatusCode, StatusCodeName> = {
  [SpanStatusCode.UNSET]: 'UNSET',
  [SpanStatusCode.OK]: 'OK',
  [SpanStatusCode.ERROR]: 'ERROR',
};

function hrTimeToNsString(time: HrTime): string {
  return (BigInt(time[0]) * 1_000_000_000n + BigInt(time[1])).toString();
}

/** Drops `undefined` values (never exported) so that the line holds only real attributes. */
function plainAttributes(attributes: Attributes): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const key of Object.keys(attributes)) {
    const value = attributes[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Serialises a finished span to one line (no trailing newline). */
export function spanToJsonLine(span: ReadableSpan): string {
  const ctx = span.spanContext();
  const parent = span.parentSpanContext;
  const status = span.status;
  const line = {
    v: SPAN_RECORD_VERSION,
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: parent?.spanId,
    traceState: ctx.traceState?.serialize() || undefined,
    traceFlags: ctx.traceFlags,
    name: span.name,
    kind: KIND_NAMES[span.kind] ?? 'internal',
    startTimeUnixNano: hrTimeToNsString(span.startTime),
    endTimeUnixNano: hrTimeToNsString(span.endTime),
    attributes: plainAttributes(span.attributes),
    status: { code: STATUS_NAMES[status.code] ?? 'UNSET', message: status.message || undefined },
    events: span.events.map((e) => ({
      name: e.name,
      timeUnixNano: hrTimeToNsString(e.time),
      attributes: plainAttributes(e.attributes ?? {}),
    })),
    links: span.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      attributes: plainAttributes(l.attributes ?? {}),
    })),
    resource: plainAttributes(span.resource.attributes as Attributes),
    scope: { name: span.instrumentationScope.name, version: span.instrumentationScope.version },
    droppedAttributesCount: span.droppedAttributesCount,
  };
  return JSON.stringify(line);
}

interface RawLine extends Omit<SpanRecord, 'startTimeUnixNano' | 'endTimeUnixNano' | 'events'> {
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly events: readonly { readonly name: string; readonly timeUnixNano: string; readonly attributes: Attributes }[];
}

/** Parses one line written by {@link spanToJsonLine}. Throws on malformed input. */
export function parseSpanLine(line: string): SpanRecord {
  const raw = JSON.parse(line) as RawLine;
  if (raw.v !== SPAN_RECORD_VERSION) throw new Error(`unsupported span record version ${String(raw.v)}`);
  if (typeof raw.traceId !== 'string' || typeof raw.spanId !== 'string' || typeof raw.name !== 'string') {
    throw new Error('span record lacks traceId, spanId or name');
  }
  return {
    ...raw,
    startTimeUnixNano: BigInt(raw.startTimeUnixNano),
    endTimeUnixNano: BigInt(raw.endTimeUnixNano),
    events: raw.events.map((e) => ({ ...e, timeUnixNano: BigInt(e.timeUnixNano) })),
  };
}
