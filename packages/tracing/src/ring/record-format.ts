/**
 * Byte layout of one record (little-endian). All offsets are relative to the record start,
 * which is always at a slot boundary.
 *
 * | off | type | field                                                        |
 * |-----|------|--------------------------------------------------------------|
 * |  0  | i32  | commit word: ticket + 1 (lap-tagged); written last, atomically |
 * |  4  | u8   | event code                                                   |
 * |  5  | u8   | flags (see {@link RecordFlag})                               |
 * |  6  | u16  | slots used by this record                                    |
 * |  8  | u32  | timestamp, seconds since the epoch                           |
 * | 12  | u32  | timestamp, nanoseconds within the second                     |
 * | 16  | f64  | operation id                                                 |
 * | 24  | i32  | worker / rank id                                             |
 * | 28  | u16  | publisher id                                                 |
 * | 30  | u16  | record length in bytes                                       |
 * | 32  | ...  | payload: session id, presence bits, fields, trace carrier    |
 *
 * Payload encodings: `str` = u16 byte length + UTF-8; `u32`/`i32` = 4 bytes; `f64` = 8 bytes;
 * `bool` = 1 byte; `u32[]` = u16 count + 4 bytes each; `str[]` = u16 count + each as `str`.
 * A u32 presence bitmask (bit i = field i present) precedes the fields.
 */
export const Off = {
  COMMIT: 0,
  CODE: 4,
  FLAGS: 5,
  SLOTS: 6,
  TS_SEC: 8,
  TS_NSEC: 12,
  OP_ID: 16,
  WORKER_ID: 24,
  PRODUCER_ID: 28,
  LENGTH: 30,
  PAYLOAD: 32,
} as const;

export const RecordFlag = {
  HAS_WORKER: 1,
  HAS_TRACEPARENT: 2,
  HAS_TRACESTATE: 4,
} as const;

/** Limits enforced at publish time: oversize input is rejected, never truncated. */
export const Limits = {
  SESSION_ID_BYTES: 256,
  STRING_BYTES: 1024,
  LIST_ITEMS: 256,
  TRACE_HEADER_CHARS: 512,
  FIELDS_PER_TYPE: 32,
} as const;
