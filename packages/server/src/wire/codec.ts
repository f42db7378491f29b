import { Decoder, Encoder } from '@msgpack/msgpack';
import { WireError } from './wire-error.js';

/**
 * msgpack, with decode limits so a hostile header ("a 4 GiB string follows") fails fast
 * instead of allocating. `__proto__` keys are refused by the decoder itself. Extension types
 * are not part of the protocol: they decode to `ExtData` and fail field validation.
 */
const encoder = new Encoder({ ignoreUndefined: true });

export interface DecodeLimits {
  /** Largest bin/str (bytes); the per-message limit bounds it anyway. */
  readonly maxBytes: number;
}

export function createDecoder(limits: DecodeLimits): Decoder {
  return new Decoder({
    maxStrLength: Math.min(limits.maxBytes, 1 << 20),
    maxBinLength: limits.maxBytes,
    maxArrayLength: 1 << 24,
    maxMapLength: 1 << 12,
    maxExtLength: 1 << 10,
  });
}

export function encode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes exactly one msgpack value; trailing bytes or truncation are `MALFORMED`. */
export function decodeFrame(decoder: Decoder, frame: Uint8Array, what: string): unknown {
  try {
    return decoder.decode(frame);
  } catch (err) {
    const detail = err instanceof Error ? err.message.slice(0, 120) : 'decode failed';
    throw new WireError('MALFORMED', `${what} frame is not valid msgpack (${detail})`);
  }
}

/** Below this, the plain encoder's extra copy costs less than splicing. */
const SPLICE_MIN_BYTES = 64 * 1024;

function binHeader(length: number): Uint8Array {
  if (length < 0x100) return Uint8Array.of(0xc4, length);
  if (length < 0x10000) return Uint8Array.of(0xc5, length >>> 8, length & 0xff);
  return Uint8Array.of(0xc6, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
}

/**
 * Encodes `map` plus one more entry `key: bin(length)` whose bytes `fill` writes straight into
 * the output: large KV payloads are copied once (into the message) instead of twice (into the
 * encoder's buffer, then out of it). The result is ordinary msgpack; any decoder reads it.
 */
export function encodeMapWithBin(
  map: Readonly<Record<string, unknown>>,
  key: string,
  length: number,
  fill: (dst: Uint8Array) => void,
): Uint8Array {
  const rest = Object.fromEntries(Object.entries(map).filter(([k, v]) => k !== key && v !== undefined));
  const count = Object.keys(rest).length;
  if (length < SPLICE_MIN_BYTES || count >= 15) {
    const data = new Uint8Array(length);
    fill(data);
    return encode({ ...rest, [key]: data });
  }
  const head = encode(rest);
  // A map of < 15 entries starts with a one-byte fixmap header (0x80 | count).
  const keyBytes = encode(key);
  const bin = binHeader(length);
  const out = new Uint8Array(head.length + keyBytes.length + bin.length + length);
  out.set(head, 0);
  out[0] = 0x80 | (count + 1);
  out.set(keyBytes, head.length);
  out.set(bin, head.length + keyBytes.length);
  fill(out.subarray(head.length + keyBytes.length + bin.length));
  return out;
}

/** Prefix of a successful reply whose `result` map follows: `{ok: true, result: ...}`. */
const OK_RESULT_PREFIX = (() => {
  const okTrue = encode({ ok: true, result: null });
  // `{ok: true, result: nil}` ends with the nil byte; the result's own encoding replaces it.
  return okTrue.subarray(0, okTrue.length - 1);
})();

/** `{ok: true, result}` where `result` is already msgpack. */
export function encodeOkReply(resultBytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(OK_RESULT_PREFIX.length + resultBytes.length);
  out.set(OK_RESULT_PREFIX, 0);
  out.set(resultBytes, OK_RESULT_PREFIX.length);
  return out;
}

/**
 * A handler result that is already encoded (a large `RETRIEVE_DATA` reply assembled without
 * intermediate copies). The transport wraps it as `{ok: true, result: <bytes>}`.
 */
export class PreEncoded {
  constructor(readonly bytes: Uint8Array) {}
}
