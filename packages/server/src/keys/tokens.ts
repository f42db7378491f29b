import { invalid } from '../errors.js';

/** Token ids as the engine sends them: a plain array or a `Uint32Array`. Each id is a u32. */
export type TokenIds = readonly number[] | Uint32Array;

/** Largest prompt accepted (tokens); guards against absurd inputs. */
export const MAX_TOKENS = 1 << 24;

/**
 * Validates token ids and returns them as a `Uint32Array` (the input itself when it already is
 * one). Error messages name the position, never the value.
 */
export function toTokenArray(tokens: unknown, what = 'tokens'): Uint32Array {
  if (tokens instanceof Uint32Array) {
    if (tokens.length > MAX_TOKENS) throw invalid(`${what}: more than ${MAX_TOKENS} tokens`);
    return tokens;
  }
  if (!Array.isArray(tokens)) throw invalid(`${what} must be an array of u32 token ids or a Uint32Array`);
  if (tokens.length > MAX_TOKENS) throw invalid(`${what}: more than ${MAX_TOKENS} tokens`);
  const out = new Uint32Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffffffff) {
      throw invalid(`${what}[${i}] is not a u32 token id`);
    }
    out[i] = t;
  }
  return out;
}

/** Number of full chunks in `length` tokens. */
export function fullChunks(length: number, chunkTokens: number): number {
  return Math.floor(length / chunkTokens);
}
