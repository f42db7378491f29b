import type { KvmpEvent, TraceCarrier } from '../events/event.js';
import { Off, RecordFlag } from '../ring/record-format.js';
import type { RingViews } from '../ring/ring-layout.js';
import { CODEC_BY_CODE, type MetaReader } from '../ring/type-codec.js';

/** Decodes committed records into event objects. Lives on the drain thread. */
export class RecordDecoder implements MetaReader {
  private readonly view: DataView;
  private readonly text: Buffer;
  private pos = 0;
  private readonly bytes: Uint8Array;
  /**
   * Remembered strings: slot i holds its UTF-8 bytes at `i * INTERN_MAX_BYTES` of one slab and
   * its length in `internLengths` (0: empty slot). One allocation for the decoder's lifetime,
   * not an ArrayBuffer per new string (every request brings a new session id).
   */
  private readonly internSlab = new Uint8Array(INTERN_SLOTS * INTERN_MAX_BYTES);
  private readonly internSlabView = new DataView(this.internSlab.buffer);
  private readonly internLengths = new Uint8Array(INTERN_SLOTS);
  private readonly internStrings: string[] = new Array(INTERN_SLOTS).fill('');

  constructor(ring: RingViews) {
    this.view = ring.dataView;
    this.bytes = ring.data;
    // A Buffer over the shared data region: utf8Slice reads it in place (TextDecoder cannot).
    this.text = Buffer.from(ring.data.buffer, ring.data.byteOffset, ring.data.byteLength);
  }

  /** Decodes the record at byte offset `at`; `undefined` for an unknown event code. */
  decode(at: number, seq: number): KvmpEvent | undefined {
    const v = this.view;
    const codec = CODEC_BY_CODE[v.getUint8(at + Off.CODE)];
    if (codec === undefined) return undefined;
    const flags = v.getUint8(at + Off.FLAGS);
    this.pos = at + Off.PAYLOAD;
    const sessionId = this.str();
    const presence = v.getUint32(this.pos, true);
    this.pos += 4;
    const meta = codec.decodeMeta(this, presence);
    let trace: TraceCarrier | undefined;
    if ((flags & RecordFlag.HAS_TRACEPARENT) !== 0) {
      const traceparent = this.str();
      trace = (flags & RecordFlag.HAS_TRACESTATE) !== 0 ? { traceparent, tracestate: this.str() } : { traceparent };
    }
    return {
      type: codec.name,
      seq,
      sessionId,
      opId: v.getFloat64(at + Off.OP_ID, true),
      workerId: (flags & RecordFlag.HAS_WORKER) !== 0 ? v.getInt32(at + Off.WORKER_ID, true) : undefined,
      time: [v.getUint32(at + Off.TS_SEC, true), v.getUint32(at + Off.TS_NSEC, true)],
      meta,
      trace,
      producerId: v.getUint16(at + Off.PRODUCER_ID, true),
    } as KvmpEvent;
  }

  /** Timestamp of the record at `at`, in epoch ns as a float (for lag). */
  timeNs(at: number): number {
    return this.view.getUint32(at + Off.TS_SEC, true) * 1e9 + this.view.getUint32(at + Off.TS_NSEC, true);
  }

  u32(): number {
    const p = this.pos;
    this.pos = p + 4;
    return this.view.getUint32(p, true);
  }

  i32(): number {
    const p = this.pos;
    this.pos = p + 4;
    return this.view.getInt32(p, true);
  }

  f64(): number {
    const p = this.pos;
    this.pos = p + 8;
    return this.view.getFloat64(p, true);
  }

  bool(): boolean {
    return this.view.getUint8(this.pos++) !== 0;
  }

  u32List(): number[] {
    const n = this.view.getUint16(this.pos, true);
    const p = this.pos + 2;
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.view.getUint32(p + 4 * i, true);
    this.pos = p + 4 * n;
    return out;
  }

  strList(): string[] {
    const n = this.view.getUint16(this.pos, true);
    this.pos += 2;
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = this.str();
    return out;
  }

  str(): string {
    const len = this.view.getUint16(this.pos, true);
    const start = this.pos + 2;
    this.pos = start + len;
    if (len === 0) return '';
    if (len > INTERN_MAX_BYTES) return this.text.toString('utf8', start, start + len);
    return this.intern(start, len);
  }

  /**
   * Session ids, model names, devices and engine ids repeat from event to event. Comparing the
   * bytes with a cached copy is cheaper than decoding UTF-8 into a new string, and hands
   * subscribers the same string object (cheap Map lookups by identity-equal keys).
   */
  private intern(start: number, len: number): string {
    const b = this.bytes;
    const slot = (len * 31 + b[start] * 7 + b[start + (len >> 1)] * 13 + b[start + len - 1]) & (INTERN_SLOTS - 1);
    const at = slot * INTERN_MAX_BYTES;
    if (this.internLengths[slot] === len) {
      // Four bytes at a time (unaligned DataView reads are cheap), then the odd tail.
      const v = this.view;
      const c = this.internSlabView;
      let i = 0;
      for (; i + 4 <= len; i += 4) if (c.getUint32(at + i) !== v.getUint32(start + i)) break;
      if (i + 4 > len) {
        const slab = this.internSlab;
        for (; i < len; i++) if (slab[at + i] !== b[start + i]) break;
        if (i === len) return this.internStrings[slot];
      }
    }
    const s = this.text.toString('utf8', start, start + len);
    const slab = this.internSlab;
    for (let i = 0; i < len; i++) slab[at + i] = b[start + i];
    this.internLengths[slot] = len;
    this.internStrings[slot] = s;
    return s;
  }
}

const INTERN_MAX_BYTES = 64;
const INTERN_SLOTS = 1024;
