import { HASH_BYTES, toHex } from './chunk-hasher.js';

/**
 * A session's cache of chained chunk hashes, so chunked prefill (one store per scheduler step,
 * each resending the full token list) never rehashes the prefix.
 *
 * The cache remembers the tokens it hashed. When a later call sends tokens that differ inside
 * the cached prefix (the engine replaced the prompt), the cache is truncated at the first
 * differing chunk, so a stale hash is never served.
 */
export class HashChainCache {
  private tokens = new Uint32Array(0);
  private hashes = new Uint8Array(0);
  private hexes: string[] = [];
  private count = 0;

  constructor(private readonly chunkTokens: number) {}

  /** Chunks cached. */
  get size(): number {
    return this.count;
  }

  /**
   * How many of the first `wanted` chunks are cached and still valid for `tokens`; truncates
   * the cache at the first chunk whose tokens changed.
   */
  validPrefix(tokens: Uint32Array, wanted: number): number {
    const n = Math.min(this.count, wanted);
    if (n === 0) return 0;
    const len = n * this.chunkTokens;
    const a = Buffer.from(this.tokens.buffer, this.tokens.byteOffset, len * 4);
    const b = Buffer.from(tokens.buffer, tokens.byteOffset, len * 4);
    if (a.equals(b)) return n;
    let c = 0;
    while (c < n) {
      const from = c * this.chunkTokens * 4;
      const to = from + this.chunkTokens * 4;
      if (a.compare(b, from, to, from, to) !== 0) break;
      c++;
    }
    this.count = c;
    this.hexes.length = c;
    return c;
  }

  /** The hash of chunk `i - 1` (the chain input of chunk `i`); `chainStart` for `i = 0`. */
  prevOf(i: number, chainStart: Uint8Array): Uint8Array {
    return i === 0 ? chainStart : this.hashes.subarray((i - 1) * HASH_BYTES, i * HASH_BYTES);
  }

  /** Appends hashes of chunks `[from, from + n)` computed from `tokens`; `from` must equal `size`. */
  append(from: number, digests: Uint8Array, tokens: Uint32Array): void {
    if (from !== this.count) throw new Error('hash cache: non-contiguous append');
    const n = digests.length / HASH_BYTES;
    const total = from + n;
    if (this.hashes.length < total * HASH_BYTES) {
      const grown = new Uint8Array(Math.max(total, this.count * 2) * HASH_BYTES);
      grown.set(this.hashes.subarray(0, this.count * HASH_BYTES));
      this.hashes = grown;
    }
    this.hashes.set(digests, from * HASH_BYTES);
    const tokenLen = total * this.chunkTokens;
    if (this.tokens.length < tokenLen) {
      const grown = new Uint32Array(Math.max(tokenLen, this.tokens.length * 2));
      grown.set(this.tokens.subarray(0, this.count * this.chunkTokens));
      this.tokens = grown;
    }
    this.tokens.set(tokens.subarray(from * this.chunkTokens, tokenLen), from * this.chunkTokens);
    for (let i = 0; i < n; i++) this.hexes.push(toHex(digests, i * HASH_BYTES, HASH_BYTES));
    this.count = total;
  }

  /** Hex hashes of chunks `[from, to)`; all must be cached. */
  hex(from: number, to: number): string[] {
    if (to > this.count) throw new Error('hash cache: chunk not hashed yet');
    return this.hexes.slice(from, to);
  }
}
