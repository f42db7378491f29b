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

/** Exact nanoseconds as a decimal string, without BigInt (the hot path runs per span). */
function hrTimeToNsString(time: HrTime): string {
  const [seconds, nanos] = time;
  if (seconds === 0) return String(nanos);
  const frac = String(nanos);
  return `${seconds}${'000000000'.slice(frac.length)}${frac}`;
}

/** JSON of an attribute map without `undefined` values (never exported). */
function attributesJson(attributes: Attributes | undefined): string {
  if (attributes === undefined) return '{}';
  for (const key in attributes) {
    if (attributes[key] === undefined) return JSON.stringify(withoutUndefined(attributes));
  }
  return JSON.stringify(attributes);
}

function withoutUndefined(attributes: Attributes): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const key of Object.keys(attributes)) {
    const value = attributes[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * The tail shared by every span of one provider (resource, scope and the fixed fields),
 * serialised once: a provider has one resource and few scopes, and the tail is a third of
 * the line.
 */
const tails = new WeakMap<object, Map<string, string>>();

function tailJson(span: ReadableSpan): string {
  const scope = span.instrumentationScope;
  let byScope = tails.get(span.resource);
  if (byScope === undefined) {
    byScope = new Map();
    tails.set(span.resource, byScope);
  }
  const scopeKey = `${scope.name}\0${scope.version ?? ''}`;
  let tail = byScope.get(scopeKey);
  if (tail === undefined) {
    tail =
      `"resource":${attributesJson(span.resource.attributes as Attributes)},` +
      `"scope":${JSON.stringify({ name: scope.name, version: scope.version })}`;
    byScope.set(scopeKey, tail);
  }
  return tail;
}

/**
 * Serialises a finished span to one line (no trailing newline). Hand-assembled rather than
 * `JSON.stringify` of a copy: this runs for every exported span on the drain thread, and the
 * copy plus BigInt times cost more than the span itself. Equivalent, field for field, to
 * {@link spanToRecordObject} stringified (a test holds the two together).
 */
export function spanToJsonLine(span: ReadableSpan): string {
  const ctx = span.spanContext();
  const parent = span.parentSpanContext;
  const status = span.status;
  const traceState = ctx.traceState?.serialize();
  // Span and parent ids are hex: the SDK generates them and ignores a parent whose context
  // fails its hex check, so they need no escaping.
  let line = `{"v":${SPAN_RECORD_VERSION},"traceId":"${ctx.traceId}","spanId":"${ctx.spanId}"`;
  if (parent?.spanId !== undefined) line += `,"parentSpanId":"${parent.spanId}"`;
  if (traceState) line += `,"traceState":${JSON.stringify(traceState)}`;
  line +=
    `,"traceFlags":${ctx.traceFlags},"name":${JSON.stringify(span.name)},"kind":"${KIND_NAMES[span.kind] ?? 'internal'}"` +
    `,"startTimeUnixNano":"${hrTimeToNsString(span.startTime)}","endTimeUnixNano":"${hrTimeToNsString(span.endTime)}"` +
    `,"attributes":${attributesJson(span.attributes)},"status":{"code":"${STATUS_NAMES[status.code] ?? 'UNSET'}"`;
  if (status.message) line += `,"message":${JSON.stringify(status.message)}`;
  line += '},"events":[';
  for (let i = 0; i < span.events.length; i++) {
    const e = span.events[i];
    line +=
      `${i > 0 ? ',' : ''}{"name":${JSON.stringify(e.name)},"timeUnixNano":"${hrTimeToNsString(e.time)}"` +
      `,"attributes":${attributesJson(e.attributes)}}`;
  }
  line += '],"links":[';
  for (let i = 0; i < span.links.length; i++) {
    const l = span.links[i];
    line +=
      `${i > 0 ? ',' : ''}{"traceId":${JSON.stringify(l.context.traceId)},"spanId":${JSON.stringify(l.context.spanId)}` +
      `,"attributes":${attributesJson(l.attributes)}}`;
  }
  return `${line}],${tailJson(span)},"droppedAttributesCount":${span.droppedAttributesCount}}`;
}

/**
 * The plain-object form of {@link spanToJsonLine}'s line: `JSON.stringify` of it is the line.
 * Kept as the readable definition of the format.
 */
export function spanToRecordObject(span: ReadableSpan): object {
  const ctx = span.spanContext();
  const status = span.status;
  const ns = (t: HrTime): string => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
  const attrs = (a: Attributes | undefined): Record<string, AttributeValue> => withoutUndefined(a ?? {});
  return {
    v: SPAN_RECORD_VERSION,
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    traceState: ctx.traceState?.serialize() || undefined,
    traceFlags: ctx.traceFlags,
    name: span.name,
    kind: KIND_NAMES[span.kind] ?? 'internal',
    startTimeUnixNano: ns(span.startTime),
    endTimeUnixNano: ns(span.endTime),
    attributes: attrs(span.attributes),
    status: { code: STATUS_NAMES[status.code] ?? 'UNSET', message: status.message || undefined },
    events: span.events.map((e) => ({ name: e.name, timeUnixNano: ns(e.time), attributes: attrs(e.attributes) })),
    links: span.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      attributes: attrs(l.attributes),
    })),
    resource: attrs(span.resource.attributes as Attributes),
    scope: { name: span.instrumentationScope.name, version: span.instrumentationScope.version },
    droppedAttributesCount: span.droppedAttributesCount,
  };
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
