import type { TraceCarrier } from '../events/event.js';
import { EventEncodingError } from '../ring/codec-errors.js';
import { Limits, Off, RecordFlag } from '../ring/record-format.js';
import { MAX_RECORD_BYTES } from '../ring/ring-layout.js';
import { Kind, type TypeCodec } from '../ring/type-codec.js';

const utf8 = new TextEncoder();

/**
 * Encodes one record into a thread-private scratch buffer. Encoding happens before the ring
 * slot is reserved, so its length is known up front and the shared memory is touched by a
 * single copy. One encoder per publisher (per thread); not re-entrant.
 */
export class RecordEncoder {
  readonly bytes = new Uint8Array(MAX_RECORD_BYTES);
  private readonly view = new DataView(this.bytes.buffer);
  private pos = 0;
  private type = '';
  private field = '';

  /** Returns the encoded length in bytes. Throws {@link EventEncodingError} for oversize input. */
  encode(
    codec: TypeCodec,
    sessionId: string,
    meta: Readonly<Record<string, unknown>>,
    opId: number,
    workerId: number | undefined,
    trace: TraceCarrier | undefined,
    tsSec: number,
    tsNsec: number,
    producerId: number,
  ): number {
    const v = this.view;
    this.type = codec.name;
    let flags = 0;
    v.setUint8(Off.CODE, codec.code);
    v.setUint32(Off.TS_SEC, tsSec, true);
    v.setUint32(Off.TS_NSEC, tsNsec, true);
    v.setFloat64(Off.OP_ID, opId, true);
    if (workerId !== undefined) {
      flags |= RecordFlag.HAS_WORKER;
      v.setInt32(Off.WORKER_ID, workerId, true);
    } else {
      v.setInt32(Off.WORKER_ID, -1, true);
    }
    v.setUint16(Off.PRODUCER_ID, producerId, true);
    this.pos = Off.PAYLOAD;
    this.field = 'sessionId';
    this.str(sessionId, Limits.SESSION_ID_BYTES);

    const presenceAt = this.pos;
    this.pos += 4;
    const names = codec.fieldNames;
    const kinds = codec.kinds;
    let presence = 0;
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const value = meta[name];
      if (value === undefined) {
        if (!codec.optional[i]) throw new EventEncodingError(codec.name, name, 'is required');
        continue;
      }
      presence |= 1 << i;
      this.field = name;
      this.value(kinds[i], value);
    }
    v.setUint32(presenceAt, presence >>> 0, true);

    if (trace !== undefined) {
      flags |= RecordFlag.HAS_TRACEPARENT;
      this.field = 'traceparent';
      this.str(trace.traceparent, Limits.TRACE_HEADER_CHARS);
      if (trace.tracestate !== undefined && trace.tracestate !== '') {
        flags |= RecordFlag.HAS_TRACESTATE;
        this.field = 'tracestate';
        this.str(trace.tracestate, Limits.TRACE_HEADER_CHARS);
      }
    }
    v.setUint8(Off.FLAGS, flags);
    v.setUint16(Off.LENGTH, this.pos, true);
    return this.pos;
  }

  private value(kind: number, value: unknown): void {
    const v = this.view;
    switch (kind) {
      case Kind.U32:
        this.room(4);
        v.setUint32(this.pos, value as number, true);
        this.pos += 4;
        return;
      case Kind.I32:
        this.room(4);
        v.setInt32(this.pos, value as number, true);
        this.pos += 4;
        return;
      case Kind.F64:
        this.room(8);
        v.setFloat64(this.pos, value as number, true);
        this.pos += 8;
        return;
      case Kind.BOOL:
        this.room(1);
        v.setUint8(this.pos, value ? 1 : 0);
        this.pos += 1;
        return;
      case Kind.STR:
        this.str(value as string, Limits.STRING_BYTES);
        return;
      case Kind.U32_LIST: {
        const list = value as readonly number[];
        this.count(list.length);
        this.room(4 * list.length);
        for (let i = 0; i < list.length; i++) v.setUint32(this.pos + 4 * i, list[i], true);
        this.pos += 4 * list.length;
        return;
      }
      case Kind.STR_LIST: {
        const list = value as readonly string[];
        this.count(list.length);
        for (let i = 0; i < list.length; i++) this.str(list[i], Limits.STRING_BYTES);
        return;
      }
    }
  }

  private count(n: number): void {
    if (n > Limits.LIST_ITEMS) {
      throw new EventEncodingError(this.type, this.field, `has ${n} items (limit ${Limits.LIST_ITEMS})`);
    }
    this.room(2);
    this.view.setUint16(this.pos, n, true);
    this.pos += 2;
  }

  /** u16 byte length + UTF-8. ASCII is copied by hand: most ids are ASCII and short. */
  private str(s: string, limit: number): void {
    if (typeof s !== 'string') throw new EventEncodingError(this.type, this.field, 'must be a string');
    const start = this.pos + 2;
    const n = s.length;
    const bytes = this.bytes;
    if (n > limit) throw this.tooLong(n, limit);
    this.room(2 + n);
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[start + i] = c;
    }
    let len = i;
    if (i < n) {
      const end = Math.min(bytes.length, start + limit);
      const r = utf8.encodeInto(s, bytes.subarray(start, end));
      if (r.read < n) throw this.tooLong(Buffer.byteLength(s), limit);
      len = r.written;
    }
    this.view.setUint16(this.pos, len, true);
    this.pos = start + len;
  }

  private tooLong(bytes: number, limit: number): EventEncodingError {
    return new EventEncodingError(this.type, this.field, `is ${bytes} bytes long (limit ${limit})`);
  }

  private room(n: number): void {
    if (this.pos + n > this.bytes.length) {
      throw new EventEncodingError(
        this.type,
        this.field,
        `does not fit: the whole event would exceed ${this.bytes.length} bytes`,
      );
    }
  }
}
