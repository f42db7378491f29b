import { invalid } from '../errors.js';

/**
 * An L1 object key: (chunk hash, model name, kv rank, cache_salt). Encoded as one string so it
 * can key a `Map`: `salt \0 model \0 kvRank \0 hashHex`. The NUL separator cannot occur in any
 * field (validated), so distinct tuples never collide. A key under one salt never serves
 * another: the salt is part of the identity.
 */
export type ObjectKey = string;

/**
 * The kv rank of a worker: `(worldSize << 16) | rank`. Keys of different world sizes never
 * collide (their per-rank KV slices differ).
 */
export function kvRank(worldSize: number, rank: number): number {
  return worldSize * 65536 + rank;
}

export function objectKey(hashHex: string, modelName: string, rank: number, cacheSalt: string): ObjectKey {
  return `${cacheSalt}\0${modelName}\0${rank}\0${hashHex}`;
}

export const MAX_SALT_LENGTH = 128;
export const MAX_MODEL_NAME_LENGTH = 256;

/** As in the anchor: at most 128 characters, none of `@ / \ NUL`. */
export function checkCacheSalt(salt: unknown): string {
  if (salt === undefined || salt === null) return '';
  if (typeof salt !== 'string') throw invalid('cacheSalt must be a string');
  if (salt.length > MAX_SALT_LENGTH) throw invalid(`cacheSalt longer than ${MAX_SALT_LENGTH} characters`);
  if (/[@/\\\0]/.test(salt)) throw invalid('cacheSalt must not contain @ / \\ or NUL');
  return salt;
}

export function checkModelName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw invalid('modelName must be a non-empty string');
  if (name.length > MAX_MODEL_NAME_LENGTH) throw invalid(`modelName longer than ${MAX_MODEL_NAME_LENGTH} characters`);
  if (/[@\0]/.test(name)) throw invalid('modelName must not contain @ or NUL');
  return name;
}
