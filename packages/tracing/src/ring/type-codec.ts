import { EVENT_TYPES, type EventTypeName, type EventTypeSpec, MAX_EVENT_CODE } from '../events/event-types.js';
import type { FieldKind } from '../events/field-kinds.js';
import { Limits } from './record-format.js';

export const Kind = { U32: 0, I32: 1, F64: 2, BOOL: 3, STR: 4, U32_LIST: 5, STR_LIST: 6 } as const;

const KIND_CODES: Record<FieldKind, number> = {
  u32: Kind.U32,
  i32: Kind.I32,
  f64: Kind.F64,
  bool: Kind.BOOL,
  str: Kind.STR,
  'u32[]': Kind.U32_LIST,
  'str[]': Kind.STR_LIST,
};

/** An event type's field list flattened into arrays, so encode/decode loops stay monomorphic. */
export interface TypeCodec {
  readonly name: EventTypeName;
  readonly code: number;
  readonly fieldNames: readonly string[];
  readonly kinds: Uint8Array;
  readonly optional: readonly boolean[];
  readonly requiredMask: number;
}

function compile(name: EventTypeName, spec: EventTypeSpec): TypeCodec {
  const entries = Object.entries(spec.meta);
  if (entries.length > Limits.FIELDS_PER_TYPE) {
    throw new Error(`event ${name}: more than ${Limits.FIELDS_PER_TYPE} metadata fields`);
  }
  let requiredMask = 0;
  entries.forEach(([, f], i) => {
    if (!f.optional) requiredMask |= 1 << i;
  });
  return {
    name,
    code: spec.code,
    fieldNames: entries.map(([k]) => k),
    kinds: Uint8Array.from(entries.map(([, f]) => KIND_CODES[f.kind])),
    optional: entries.map(([, f]) => f.optional),
    requiredMask,
  };
}

export const CODEC_BY_NAME: Readonly<Record<EventTypeName, TypeCodec>> = Object.fromEntries(
  (Object.entries(EVENT_TYPES) as [EventTypeName, EventTypeSpec][]).map(([n, s]) => [n, compile(n, s)]),
) as Record<EventTypeName, TypeCodec>;

export const CODEC_BY_CODE: readonly (TypeCodec | undefined)[] = (() => {
  const byCode: (TypeCodec | undefined)[] = new Array(MAX_EVENT_CODE + 1).fill(undefined);
  for (const c of Object.values(CODEC_BY_NAME)) byCode[c.code] = c;
  return byCode;
})();
