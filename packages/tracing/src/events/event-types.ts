import { type FieldMap, field, optional } from './field-kinds.js';

/**
 * How an event's timestamp relates to the work it describes.
 * - `cpu`: published synchronously on the calling thread; the timestamp is the call time.
 * - `gpu`: published by the GPU worker when the stream reached that point; the timestamp is
 *   the stream time. Carries no trace context (the CPU sentinel of the operation has it).
 */
export type PublishMode = 'cpu' | 'gpu';

export interface EventTypeSpec {
  /** Wire code, 1..255. Stable: never reuse a retired code. */
  readonly code: number;
  /** Dotted lowercase name, as in the anchor (`mp.store.start`). */
  readonly value: string;
  readonly mode: PublishMode;
  readonly meta: FieldMap;
}

const device = field('str');
const engineId = field('str');
const modelName = field('str');

/**
 * The one table of event types. Later issues extend it by adding entries here (new codes only).
 * The metadata contract of each type is documented in `docs/EVENTS.md`.
 */
export const EVENT_TYPES = {
  // --- MP request lifecycle -------------------------------------------------------------
  MP_REQUEST_START: {
    code: 1,
    value: 'mp.request.start',
    mode: 'cpu',
    meta: { model_name: optional('str') },
  },
  MP_LOOKUP_PREFETCH_START: {
    code: 2,
    value: 'mp.lookup_prefetch.start',
    mode: 'cpu',
    meta: { model_name: optional('str') },
  },
  MP_LOOKUP_PREFETCH_END: {
    code: 3,
    value: 'mp.lookup_prefetch.end',
    mode: 'cpu',
    meta: {
      found_count: field('u32'),
      requested_tokens: field('u32'),
      hit_tokens: field('u32'),
      l1_hit_tokens: field('u32'),
      l2_hit_tokens: field('u32'),
      l1_hit_keys: field('u32'),
      l2_hit_keys: field('u32'),
      early_exit_reason: field('str'),
      model_name: optional('str'),
    },
  },
  MP_RETRIEVE_SUBMITTED: { code: 4, value: 'mp.retrieve.submitted', mode: 'cpu', meta: { device } },
  MP_RETRIEVE_START: {
    code: 5,
    value: 'mp.retrieve.start',
    mode: 'gpu',
    meta: { device, engine_id: engineId, model_name: modelName },
  },
  MP_RETRIEVE_END: {
    code: 6,
    value: 'mp.retrieve.end',
    mode: 'gpu',
    meta: {
      device,
      engine_id: engineId,
      model_name: modelName,
      retrieved_count: field('u32'),
      total_bytes: field('f64'),
      num_tokens: field('u32'),
      success: field('bool'),
      error: optional('str'),
    },
  },
  MP_STORE_SUBMITTED: { code: 7, value: 'mp.store.submitted', mode: 'cpu', meta: { device } },
  MP_STORE_START: {
    code: 8,
    value: 'mp.store.start',
    mode: 'gpu',
    meta: { device, engine_id: engineId, model_name: modelName },
  },
  MP_STORE_END: {
    code: 9,
    value: 'mp.store.end',
    mode: 'gpu',
    meta: {
      device,
      engine_id: engineId,
      model_name: modelName,
      stored_count: field('u32'),
      total_bytes: field('f64'),
      num_tokens: field('u32'),
      success: field('bool'),
      error: optional('str'),
    },
  },
  /** The end of a request's CPU side (the anchor's `MP_SESSION_END`; see {@link EVENT_TYPE_ALIASES}). */
  MP_REQUEST_END: { code: 10, value: 'mp.request.end', mode: 'cpu', meta: {} },

  // --- L1 storage ------------------------------------------------------------------------
  L1_READ_RESERVED: {
    code: 32,
    value: 'l1.read.reserved',
    mode: 'cpu',
    meta: { key_count: field('u32') },
  },
  L1_READ_FINISHED: {
    code: 33,
    value: 'l1.read.finished',
    mode: 'cpu',
    meta: { key_count: field('u32') },
  },
  L1_WRITE_RESERVED: {
    code: 34,
    value: 'l1.write.reserved',
    mode: 'cpu',
    meta: { key_count: field('u32'), total_bytes: field('f64'), model_name: optional('str') },
  },
  L1_WRITE_FINISHED: {
    code: 35,
    value: 'l1.write.finished',
    mode: 'cpu',
    meta: { key_count: field('u32'), total_bytes: field('f64'), model_name: optional('str') },
  },
  L1_KEYS_EVICTED: {
    code: 36,
    value: 'l1.keys.evicted',
    mode: 'cpu',
    meta: { key_count: field('u32'), total_bytes: field('f64') },
  },
  L1_ALLOCATION_FAILED: {
    code: 37,
    value: 'l1.allocation.failed',
    mode: 'cpu',
    meta: { during: field('str'), key_count: field('u32'), requested_bytes: field('f64') },
  },
  L1_READ_FAILED: {
    code: 38,
    value: 'l1.read.failed',
    mode: 'cpu',
    meta: { during: field('str'), reason: field('str'), key_count: field('u32') },
  },
  L1_USAGE: {
    code: 39,
    value: 'l1.usage',
    mode: 'cpu',
    meta: { used_bytes: field('f64'), capacity_bytes: field('f64'), object_count: field('u32') },
  },
} as const satisfies Record<string, EventTypeSpec>;

export type EventTypeName = keyof typeof EVENT_TYPES;

/** Names kept for compatibility with the anchor's vocabulary. */
export const EVENT_TYPE_ALIASES = { MP_SESSION_END: 'MP_REQUEST_END' } as const satisfies Record<string, EventTypeName>;

export type EventTypeAlias = keyof typeof EVENT_TYPE_ALIASES;

/** A canonical name or an alias: what publishers and subscribers may say. */
export type EventTypeRef = EventTypeName | EventTypeAlias;

/** The canonical name a reference resolves to, at the type level. */
export type CanonicalEventType<T extends EventTypeRef> = T extends EventTypeAlias ? (typeof EVENT_TYPE_ALIASES)[T] : T;

/** Canonical name for a name or alias. */
export function canonicalEventType<T extends EventTypeRef>(name: T): CanonicalEventType<T> {
  return ((EVENT_TYPE_ALIASES as Record<string, EventTypeName>)[name] ?? name) as CanonicalEventType<T>;
}

export const MAX_EVENT_CODE = 255;

/** Event type name by wire code; `undefined` for unknown codes. */
export const EVENT_NAME_BY_CODE: readonly (EventTypeName | undefined)[] = (() => {
  const byCode: (EventTypeName | undefined)[] = new Array(MAX_EVENT_CODE + 1).fill(undefined);
  for (const [name, spec] of Object.entries(EVENT_TYPES) as [EventTypeName, EventTypeSpec][]) {
    if (spec.code < 1 || spec.code > MAX_EVENT_CODE) throw new Error(`event ${name}: code out of range`);
    if (byCode[spec.code] !== undefined) throw new Error(`event ${name}: code ${spec.code} reused`);
    byCode[spec.code] = name;
  }
  return byCode;
})();
