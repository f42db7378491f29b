import type { AttributeValue, Span } from '@opentelemetry/api';
import type { EventMeta } from '../events/event.js';
import { EVENT_TYPES, type EventTypeName, type EventTypeSpec } from '../events/event-types.js';

/** Attribute keys kvmp sets itself (beyond the copied event metadata). */
export const Attr = {
  SESSION_ID: 'session_id',
  MODEL_NAME: 'model_name',
  WORKER_ID: 'worker_id',
  OP_ID: 'op_id',
  HIT_TOKENS: 'hit_tokens',
  REQUESTED_TOKENS: 'requested_tokens',
  HIT_RATE: 'hit_rate',
  L1_HIT_TOKENS: 'l1_hit_tokens',
  L2_HIT_TOKENS: 'l2_hit_tokens',
  L1_HIT_RATE: 'l1_hit_rate',
  L2_HIT_RATE: 'l2_hit_rate',
  EARLY_EXIT_REASON: 'early_exit_reason',
  /** The span was ended by the leak sweep or at shutdown, not by its END event. */
  LEAKED: 'kvmp.leaked',
  /** Why it leaked (see `LeakReason`). */
  LEAK_REASON: 'kvmp.leak_reason',
  /** The child started after its request's root had closed (it still nests under that root). */
  LATE: 'kvmp.late',
  /** On the root: copies were still in flight at REQUEST_END, so the close waited for them. */
  DEFERRED_CLOSE: 'kvmp.deferred_close',
  /** On a deferred root: how long after REQUEST_END the last in-flight copy ended, in ms. */
  CLOSE_DELAY_MS: 'kvmp.close_delay_ms',
} as const;

/**
 * Metadata keys never copied onto spans. `error` goes to the span status instead. The event
 * schema carries no token ids or KV bytes at all; this list, and copying scalar fields only
 * (list fields such as `u32[]` could hold token ids), are the second line of defence should
 * a later event type add such fields.
 */
const NOT_COPIED = new Set(['error', 'token_ids', 'tokens', 'trace_context', 'traceparent', 'tracestate', 'baggage']);

const SCALAR_KINDS = new Set(['u32', 'i32', 'f64', 'bool', 'str']);

/**
 * An END's span already holds what its START was required to carry (device, engine, model):
 * the END copies only the rest. Each attribute set is SDK work on the drain thread.
 */
const START_OF_END: Partial<Record<EventTypeName, EventTypeName>> = {
  MP_LOOKUP_PREFETCH_END: 'MP_LOOKUP_PREFETCH_START',
  MP_RETRIEVE_END: 'MP_RETRIEVE_START',
  MP_STORE_END: 'MP_STORE_START',
};

function requiredKeys(type: EventTypeName | undefined): Set<string> {
  if (type === undefined) return new Set();
  const meta: EventTypeSpec['meta'] = EVENT_TYPES[type].meta;
  return new Set(Object.entries(meta).flatMap(([key, field]) => (field.optional ? [] : [key])));
}

/** Per event type, the metadata keys copied as attributes (computed once from the schema). */
const COPIED_KEYS = new Map<EventTypeName, readonly string[]>(
  (Object.entries(EVENT_TYPES) as [EventTypeName, EventTypeSpec][]).map(([name, spec]) => {
    const setAtStart = requiredKeys(START_OF_END[name]);
    return [
      name,
      Object.entries(spec.meta)
        .filter(([key, field]) => SCALAR_KINDS.has(field.kind) && !NOT_COPIED.has(key) && !setAtStart.has(key))
        .map(([key]) => key),
    ];
  }),
);

/**
 * Sets an event's metadata on a span as typed attributes (numbers stay numbers: the anchor
 * stringified them), one at a time, with no intermediate object.
 */
export function setMetaAttributes(span: Span, type: EventTypeName, meta: Readonly<Record<string, unknown>>): void {
  const keys = COPIED_KEYS.get(type) ?? [];
  for (let i = 0; i < keys.length; i++) {
    const value = meta[keys[i]];
    if (value !== undefined) span.setAttribute(keys[i], value as AttributeValue);
  }
}

/** A ratio that is 0 rather than NaN when nothing was requested. */
function rate(part: number, whole: number): number {
  return whole > 0 ? part / whole : 0;
}

/**
 * Sets the root's lookup attributes. `hit_rate` and the per-tier rates are precomputed
 * because trace UIs cannot divide two attributes at query time; the tier rates are relative
 * to the requested tokens, so `l1_hit_rate + l2_hit_rate == hit_rate`.
 */
export function setLookupRootAttributes(root: Span, meta: EventMeta<'MP_LOOKUP_PREFETCH_END'>): void {
  root.setAttribute(Attr.HIT_TOKENS, meta.hit_tokens);
  root.setAttribute(Attr.REQUESTED_TOKENS, meta.requested_tokens);
  root.setAttribute(Attr.HIT_RATE, rate(meta.hit_tokens, meta.requested_tokens));
  root.setAttribute(Attr.L1_HIT_TOKENS, meta.l1_hit_tokens);
  root.setAttribute(Attr.L2_HIT_TOKENS, meta.l2_hit_tokens);
  root.setAttribute(Attr.L1_HIT_RATE, rate(meta.l1_hit_tokens, meta.requested_tokens));
  root.setAttribute(Attr.L2_HIT_RATE, rate(meta.l2_hit_tokens, meta.requested_tokens));
  root.setAttribute(Attr.EARLY_EXIT_REASON, meta.early_exit_reason);
  if (meta.model_name !== undefined) root.setAttribute(Attr.MODEL_NAME, meta.model_name);
}

/** Longest status message kept: reasons are for humans; a long one is likely a payload dump. */
export const MAX_STATUS_MESSAGE = 256;

export function statusMessage(reason: string | undefined, fallback: string): string {
  const text = reason === undefined || reason === '' ? fallback : reason;
  return text.length > MAX_STATUS_MESSAGE ? `${text.slice(0, MAX_STATUS_MESSAGE - 1)}…` : text;
}
