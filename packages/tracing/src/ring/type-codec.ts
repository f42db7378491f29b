import {
  EVENT_TYPE_ALIASES,
  EVENT_TYPES,
  type EventTypeName,
  type EventTypeRef,
  type EventTypeSpec,
  MAX_EVENT_CODE,
} from '../events/event-types.js';
import type { FieldKind } from '../events/field-kinds.js';
import { Limits } from './record-format.js';

/** Writes metadata values at the encoder's cursor (implemented by the producer's encoder). */
export interface MetaWriter {
  u32(value: number): void;
  i32(value: number): void;
  f64(value: number): void;
  bool(value: boolean): void;
  str(value: string, field: string): void;
  u32List(value: readonly number[], field: string): void;
  strList(value: readonly string[], field: string): void;
  missing(field: string): never;
}

/** Reads metadata values at the decoder's cursor (implemented by the drain's decoder). */
export interface MetaReader {
  u32(): number;
  i32(): number;
  f64(): number;
  bool(): boolean;
  str(): string;
  u32List(): number[];
  strList(): string[];
}

/** Per-type metadata codec. Encoders return the presence bitmask (bit i = field i present). */
export interface TypeCodec {
  readonly name: EventTypeName;
  readonly code: number;
  readonly fieldNames: readonly string[];
  readonly encodeMeta: (writer: MetaWriter, meta: object) => number;
  readonly decodeMeta: (reader: MetaReader, presence: number) => Record<string, unknown>;
}

const WRITE: Record<FieldKind, string> = {
  u32: 'u32(v)',
  i32: 'i32(v)',
  f64: 'f64(v)',
  bool: 'bool(v)',
  str: 'str(v, F)',
  'u32[]': 'u32List(v, F)',
  'str[]': 'strList(v, F)',
};
const READ: Record<FieldKind, string> = {
  u32: 'u32()',
  i32: 'i32()',
  f64: 'f64()',
  bool: 'bool()',
  str: 'str()',
  'u32[]': 'u32List()',
  'str[]': 'strList()',
};

/**
 * Compiles a type's field list into straight-line encode/decode functions. Generated code gives
 * each type its own property accesses (monomorphic inline caches) and makes decoded metadata of
 * one type share one object shape; a generic loop over `meta[name]` was ~2× slower per event.
 * Only our own table feeds the generator, and names are checked to be plain identifiers.
 */
function compile(name: EventTypeName, spec: EventTypeSpec): TypeCodec {
  const fields = Object.entries(spec.meta);
  if (fields.length > Limits.FIELDS_PER_TYPE) {
    throw new Error(`event ${name}: more than ${Limits.FIELDS_PER_TYPE} metadata fields`);
  }
  const enc: string[] = ['let p = 0; let v;'];
  const dec: string[] = [];
  const required: string[] = [];
  const optionals: string[] = [];
  fields.forEach(([field, f], i) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(field)) throw new Error(`event ${name}: bad field name ${field}`);
    const F = JSON.stringify(field);
    const write = WRITE[f.kind].replace('F', F);
    enc.push(
      `v = m.${field};`,
      f.optional
        ? `if (v !== undefined) { p |= ${1 << i}; w.${write}; }`
        : `if (v === undefined) w.missing(${F}); p |= ${1 << i}; w.${write};`,
    );
    dec.push(
      f.optional
        ? `const f${i} = (p & ${1 << i}) !== 0 ? r.${READ[f.kind]} : undefined;`
        : `const f${i} = r.${READ[f.kind]};`,
    );
    (f.optional ? optionals : required).push(`${field}: f${i}`);
  });
  enc.push('return p >>> 0;');
  dec.push(`const o = { ${required.join(', ')} };`);
  fields.forEach(([field, f], i) => {
    if (f.optional) dec.push(`if (f${i} !== undefined) o.${field} = f${i};`);
  });
  dec.push('return o;');
  return {
    name,
    code: spec.code,
    fieldNames: fields.map(([k]) => k),
    encodeMeta: new Function('w', 'm', enc.join('\n')) as TypeCodec['encodeMeta'],
    decodeMeta: new Function('r', 'p', dec.join('\n')) as TypeCodec['decodeMeta'],
  };
}

/** Codec by canonical name or alias (an alias maps to its canonical type's codec). */
export const CODEC_BY_NAME: Readonly<Record<EventTypeRef, TypeCodec>> = (() => {
  const byName = Object.fromEntries(
    (Object.entries(EVENT_TYPES) as [EventTypeName, EventTypeSpec][]).map(([n, s]) => [n, compile(n, s)]),
  ) as Record<EventTypeRef, TypeCodec>;
  for (const [alias, name] of Object.entries(EVENT_TYPE_ALIASES)) byName[alias as EventTypeRef] = byName[name];
  return byName;
})();

export const CODEC_BY_CODE: readonly (TypeCodec | undefined)[] = (() => {
  const byCode: (TypeCodec | undefined)[] = new Array(MAX_EVENT_CODE + 1).fill(undefined);
  for (const c of Object.values(CODEC_BY_NAME)) byCode[c.code] ??= c;
  return byCode;
})();
