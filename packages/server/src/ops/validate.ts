import { invalid, KvmpServerError } from '../errors.js';

export function checkRequestId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw invalid('requestId must be a non-empty string');
  if (id.length > 512) throw invalid('requestId longer than 512 characters');
  return id;
}

export function checkInstanceId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw invalid('instanceId must be a non-empty string');
  if (id.length > 256) throw invalid('instanceId longer than 256 characters');
  return id;
}

export function checkCount(v: unknown, what: string, min: number, max: number, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${what} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

/**
 * A chunk-aligned token range `[start, end)` within `length` tokens. `end` defaults to the last
 * full chunk and is aligned down (the trailing partial chunk is never stored or retrieved);
 * `start` must be aligned.
 */
export function checkRange(
  start: unknown,
  end: unknown,
  length: number,
  chunkTokens: number,
): { start: number; end: number; firstChunk: number; chunks: number } {
  const s = start === undefined ? 0 : start;
  if (typeof s !== 'number' || !Number.isInteger(s) || s < 0)
    throw new KvmpServerError('BAD_RANGE', 'start must be a non-negative integer');
  if (s % chunkTokens !== 0)
    throw new KvmpServerError('BAD_RANGE', `start ${s} is not a multiple of the chunk size ${chunkTokens}`);
  let e = end === undefined ? length : end;
  if (typeof e !== 'number' || !Number.isInteger(e) || e < 0)
    throw new KvmpServerError('BAD_RANGE', 'end must be a non-negative integer');
  if (e > length) throw new KvmpServerError('BAD_RANGE', `end ${e} exceeds the ${length} tokens sent`);
  e -= e % chunkTokens;
  if (e < s) throw new KvmpServerError('BAD_RANGE', `end ${e} (chunk-aligned) is before start ${s}`);
  return { start: s, end: e, firstChunk: s / chunkTokens, chunks: (e - s) / chunkTokens };
}
