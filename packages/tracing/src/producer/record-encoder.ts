import type { TraceCarrier } from '../events/event.js';
import { EventEncodingError } from '../ring/codec-errors.js';
import { Limits, Off, RecordFlag } from '../ring/record-format.js';
import { MAX_RECORD_BYTES } from '../ring/ring-layout.js';
import type { MetaWriter, TypeCodec } from '../ring/type-codec.js';

const utf8 = new TextEncoder();

/** Strings up to this many bytes are remembered in encoded form (ids, model names, devices). */
const CACHEABLE_BYTES = 128;
const CACHE_ENTRIES = 512;

/**
 * Encodes one record into a thread-private scratch buffer. Encoding happens before the ring
 * slot is reserved, so the length is known up front and shared memory is touched by a single
 * copy. One encoder per publisher (per thread); not re-entrant.
 */
export class RecordEncoder implements MetaWriter {
  readonly bytes = new Uint8Array(MAX_RECORD_BYTES);
  private readonly view = new DataView(this.bytes.buffer);
  private pos = 0;
  private type = '';
  /**
   * Encoded bytes of recently seen short strings. Session ids, model names and device names
   * repeat across a request's events; a map hit plus a copy beats re-encoding char by char.
   * The bytes live in one slab (entry i at `i * CACHEABLE_BYTES`), replaced round-robin, and
   * the map holds a view of each: a new session id per request costs a view object, not an
   * ArrayBuffer, and a hit is one `set` from that view.
   */
  private readonly encoded = new Map<string, Uint8Array>();
  private readonly slab = new Uint8Array(CACHE_ENTRIES * CACHEABLE_BYTES);
  private readonly slabKeys: (string | undefined)[] = new Array(CACHE_ENTRIES).fill(undefined);
  private nextEntry = 0;

  /** Returns the encoded length in bytes. Throws {@link EventEncodingError} for bad input. */
  encode(
    codec: TypeCodec,
    sessionId: string,
    meta: object,
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
    this.string(sessionId, 'sessionId', Limits.SESSION_ID_BYTES);

    const presenceAt = this.pos;
    this.pos += 4;
    v.setUint32(presenceAt, codec.encodeMeta(this, meta), true);

    if (trace !== undefined) {
      flags |= RecordFlag.HAS_TRACEPARENT;
      this.string(trace.traceparent, 'traceparent', Limits.TRACE_HEADER_CHARS);
      if (trace.tracestate !== undefined && trace.tracestate !== '') {
        flags |= RecordFlag.HAS_TRACESTATE;
        this.string(trace.tracestate, 'tracestate', Limits.TRACE_HEADER_CHARS);
      }
    }
    v.setUint8(Off.FLAGS, flags);
    v.setUint16(Off.LENGTH, this.pos, true);
    return this.pos;
  }

  u32(value: number): void {
    this.room(4, 'u32');
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
  }

  i32(value: number): void {
    this.room(4, 'i32');
    this.view.setInt32(this.pos, value, true);
    this.pos += 4;
  }

  f64(value: number): void {
    this.room(8, 'f64');
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  bool(value: boolean): void {
    this.room(1, 'bool');
    this.bytes[this.pos++] = value ? 1 : 0;
  }

  str(value: string, field: string): void {
    this.string(value, field, Limits.STRING_BYTES);
  }

  u32List(list: readonly number[], field: string): void {
    if (!Array.isArray(list)) throw new EventEncodingError(this.type, field, 'must be an array');
    this.count(list.length, field);
    this.room(4 * list.length, field);
    for (let i = 0; i < list.length; i++) this.view.setUint32(this.pos + 4 * i, list[i], true);
    this.pos += 4 * list.length;
  }

  strList(list: readonly string[], field: string): void {
    if (!Array.isArray(list)) throw new EventEncodingError(this.type, field, 'must be an array');
    this.count(list.length, field);
    for (let i = 0; i < list.length; i++) this.str(list[i], field);
  }

  missing(field: string): never {
    throw new EventEncodingError(this.type, field, 'is required');
  }

  private count(n: number, field: string): void {
    if (n > Limits.LIST_ITEMS) {
      throw new EventEncodingError(this.type, field, `has ${n} items (limit ${Limits.LIST_ITEMS})`);
    }
    this.room(2, field);
    this.view.setUint16(this.pos, n, true);
    this.pos += 2;
  }

  /** u16 byte length + UTF-8. */
  private string(s: string, field: string, limit: number): void {
    const bytes = this.bytes;
    const start = this.pos + 2;
    const cached = this.encoded.get(s);
    if (cached !== undefined) {
      if (cached.length > limit) throw this.tooLong(field, cached.length, limit);
      this.room(2 + cached.length, field);
      bytes.set(cached, start);
      this.view.setUint16(this.pos, cached.length, true);
      this.pos = start + cached.length;
      return;
    }
    if (typeof s !== 'string') throw new EventEncodingError(this.type, field, 'must be a string');
    const n = s.length;
    if (n > limit) throw this.tooLong(field, Buffer.byteLength(s), limit);
    this.room(2 + n, field);
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
      if (r.read < n) throw this.tooLong(field, Buffer.byteLength(s), limit);
      len = r.written;
    }
    this.view.setUint16(this.pos, len, true);
    this.pos = start + len;
    if (len <= CACHEABLE_BYTES) this.remember(s, start, len);
  }

  private remember(s: string, start: number, len: number): void {
    const entry = this.nextEntry;
    this.nextEntry = (entry + 1) % CACHE_ENTRIES;
    const evicted = this.slabKeys[entry];
    if (evicted !== undefined) this.encoded.delete(evicted);
    this.slabKeys[entry] = s;
    const to = entry * CACHEABLE_BYTES;
    const slab = this.slab;
    const bytes = this.bytes;
    for (let i = 0; i < len; i++) slab[to + i] = bytes[start + i];
    this.encoded.set(s, slab.subarray(to, to + len));
  }

  private tooLong(field: string, bytes: number, limit: number): EventEncodingError {
    return new EventEncodingError(this.type, field, `is ${bytes} bytes long (limit ${limit})`);
  }

  private room(n: number, field: string): void {
    if (this.pos + n > this.bytes.length) {
      throw new EventEncodingError(
        this.type,
        field,
        `does not fit: the whole event would exceed ${this.bytes.length} bytes`,
      );
    }
  }
}
