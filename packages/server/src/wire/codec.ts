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
