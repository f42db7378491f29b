import { createBLAKE3, type IHasher } from 'hash-wasm';

/** Bytes in a chunk hash (BLAKE3-256). */
export const HASH_BYTES = 32;

/**
 * The chain start `hash_{-1}`: BLAKE3 of the ASCII string below. Fixed forever for this key
 * format; changing it invalidates every stored key. Its hex value is pinned by a test and
 * documented in the README.
 */
export const CHAIN_START_LABEL = 'kvmp.chunk-hash.chain-start.v1';

/**
 * Chained chunk hashes: `hash_i = BLAKE3(hash_{i-1} || chunk_i tokens as big-endian u32)`,
 * `hash_{-1} = BLAKE3("kvmp.chunk-hash.chain-start.v1")`. Each hash therefore encodes its whole
 * prefix, which makes a lookup a prefix match. Only full chunks are hashed.
 *
 * One instance per thread (hash-wasm hashers are synchronous after one async init).
 */
export class ChunkHasher {
  readonly chainStart: Uint8Array;
  private readonly hasher: IHasher;
  private scratch: Uint8Array;
  private view: DataView;

  private constructor(hasher: IHasher) {
    this.hasher = hasher;
    this.scratch = new Uint8Array(HASH_BYTES + 256 * 4);
    this.view = new DataView(this.scratch.buffer);
    hasher.init();
    hasher.update(CHAIN_START_LABEL);
    this.chainStart = hasher.digest('binary');
  }

  static async create(): Promise<ChunkHasher> {
    return new ChunkHasher(await createBLAKE3());
  }

  /**
   * Hashes `count` consecutive chunks of `chunkTokens` tokens starting at token `fromToken`,
   * chained from `prev`. Returns the hashes back to back (`count * 32` bytes).
   */
  hashChunks(prev: Uint8Array, tokens: Uint32Array, fromToken: number, chunkTokens: number, count: number): Uint8Array {
    const need = HASH_BYTES + chunkTokens * 4;
    if (this.scratch.length < need) {
      this.scratch = new Uint8Array(need);
      this.view = new DataView(this.scratch.buffer);
    }
    const scratch = this.scratch;
    const view = this.view;
    const input = scratch.subarray(0, need);
    const out = new Uint8Array(count * HASH_BYTES);
    let prevHash = prev;
    for (let c = 0; c < count; c++) {
      scratch.set(prevHash, 0);
      const base = fromToken + c * chunkTokens;
      for (let i = 0; i < chunkTokens; i++) view.setUint32(HASH_BYTES + 4 * i, tokens[base + i], false);
      this.hasher.init();
      this.hasher.update(input);
      const digest = this.hasher.digest('binary');
      out.set(digest, c * HASH_BYTES);
      prevHash = digest;
    }
    return out;
  }
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array, offset = 0, length = bytes.length - offset): string {
  let s = '';
  for (let i = offset; i < offset + length; i++) s += HEX[bytes[i]];
  return s;
}
