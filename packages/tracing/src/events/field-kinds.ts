/**
 * Metadata field kinds an event type can declare. Each kind has a fixed wire encoding
 * (see `docs/EVENTS.md` and `ring/record-codec.ts`) and maps to one TypeScript type.
 */
export type FieldKind = 'u32' | 'i32' | 'f64' | 'bool' | 'str' | 'u32[]' | 'str[]';

export interface FieldSpec<K extends FieldKind = FieldKind> {
  readonly kind: K;
  readonly optional: boolean;
}

export type FieldValue<K extends FieldKind> = K extends 'str'
  ? string
  : K extends 'bool'
    ? boolean
    : K extends 'u32[]'
      ? readonly number[]
      : K extends 'str[]'
        ? readonly string[]
        : number;

/** A required field of the given kind. */
export function field<K extends FieldKind>(kind: K): FieldSpec<K> & { readonly optional: false } {
  return { kind, optional: false };
}

/** An optional field: absent values cost one bit on the wire. */
export function optional<K extends FieldKind>(kind: K): FieldSpec<K> & { readonly optional: true } {
  return { kind, optional: true };
}

export type FieldMap = Readonly<Record<string, FieldSpec>>;

type RequiredKeys<M extends FieldMap> = {
  [P in keyof M]: M[P] extends { readonly optional: true } ? never : P;
}[keyof M];
type OptionalKeys<M extends FieldMap> = Exclude<keyof M, RequiredKeys<M>>;

/** The metadata object type described by a field map. */
export type MetaOf<M extends FieldMap> = {
  readonly [P in RequiredKeys<M>]: FieldValue<M[P]['kind']>;
} & {
  readonly [P in OptionalKeys<M>]?: FieldValue<M[P]['kind']>;
};
