import { type TraceCarrier, validCarrier } from '@kvmp/tracing';
import { badField, WireError } from './wire-error.js';

/**
 * Typed readers over a decoded payload map. Each names the field in its error and never echoes
 * the value. Unknown keys are ignored, so a field added later with a default stays compatible.
 */
export type Payload = Readonly<Record<string, unknown>>;

export function asPayload(value: unknown): Payload {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new WireError('BAD_ARITY', 'the payload frame must be a msgpack map');
  }
  return value as Payload;
}

export function str(p: Payload, key: string, maxLength = 512): string {
  const v = p[key];
  if (typeof v !== 'string' || v.length === 0) throw badField(`${key} must be a non-empty string`);
  if (v.length > maxLength) throw badField(`${key} is longer than ${maxLength} characters`);
  return v;
}

export function optStr(p: Payload, key: string, maxLength = 512): string | undefined {
  if (p[key] === undefined || p[key] === null) return undefined;
  const v = p[key];
  if (typeof v !== 'string') throw badField(`${key} must be a string`);
  if (v.length > maxLength) throw badField(`${key} is longer than ${maxLength} characters`);
  return v;
}

export function int(p: Payload, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = p[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw badField(`${key} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

export function optInt(p: Payload, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  return p[key] === undefined || p[key] === null ? undefined : int(p, key, min, max);
}

export function optBool(p: Payload, key: string): boolean | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badField(`${key} must be a boolean`);
  return v;
}

export function bin(p: Payload, key: string, exactLength?: number): Uint8Array {
  const v = p[key];
  if (!(v instanceof Uint8Array)) throw badField(`${key} must be msgpack bin`);
  if (exactLength !== undefined && v.length !== exactLength) {
    throw badField(`${key} must be exactly ${exactLength} bytes (got ${v.length})`);
  }
  return v;
}

export function optBin(p: Payload, key: string, exactLength?: number): Uint8Array | undefined {
  return p[key] === undefined || p[key] === null ? undefined : bin(p, key, exactLength);
}

export function map(p: Payload, key: string): Payload {
  const v = p[key];
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw badField(`${key} must be a map`);
  }
  return v as Payload;
}

/** An array of non-negative integers below `max`. */
export function intArray(p: Payload, key: string, max: number, maxLength = 1 << 24): number[] {
  const v = p[key];
  if (!Array.isArray(v)) throw badField(`${key} must be an array of integers`);
  if (v.length > maxLength) throw badField(`${key} has more than ${maxLength} entries`);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0 || x > max) {
      throw badField(`${key}[${i}] must be an integer in [0, ${max}]`);
    }
  }
  return v as number[];
}

/**
 * Token ids: either a msgpack array of u32, or bin holding little-endian u32 (4 bytes per
 * token; much cheaper to encode and decode). Errors name the position, never the value.
 */
export function tokens(p: Payload, key = 'tokens'): Uint32Array {
  const v = p[key];
  if (v instanceof Uint8Array) {
    if (v.length % 4 !== 0) throw badField(`${key}: bin length must be a multiple of 4 (little-endian u32)`);
    const out = new Uint32Array(v.length / 4);
    // Copy rather than view: the frame buffer may be unaligned and is reused by nobody else,
    // but a copy keeps the session's token cache independent of message buffers.
    new Uint8Array(out.buffer).set(v);
    if (!isLittleEndian) for (let i = 0; i < out.length; i++) out[i] = swap32(out[i]);
    return out;
  }
  if (!Array.isArray(v)) throw badField(`${key} must be an array of u32 or bin of little-endian u32`);
  const out = new Uint32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const t = v[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffffffff) {
      throw badField(`${key}[${i}] is not a u32 token id`);
    }
    out[i] = t;
  }
  return out;
}

const isLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function swap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The optional W3C trace carrier `{traceparent, tracestate?}`. An invalid carrier is dropped
 * (not an error): tracing must never make a request fail.
 */
export function traceCarrier(p: Payload, key = 'trace'): TraceCarrier | undefined {
  const v = p[key];
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return undefined;
  const c = v as Payload;
  const tp = c.traceparent;
  if (typeof tp !== 'string' || tp.length > 512 || !TRACEPARENT.test(tp)) return undefined;
  const ts = c.tracestate;
  if (ts !== undefined && (typeof ts !== 'string' || ts.length > 512)) return validCarrier({ traceparent: tp });
  return validCarrier(ts === undefined ? { traceparent: tp } : { traceparent: tp, tracestate: ts });
}
