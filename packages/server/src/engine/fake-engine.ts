import type { CacheServer } from '../create-cache-server.js';
import type { KvDtype, KvLayoutSpec } from '../gpu/contract.js';
import type { TokenIds } from '../keys/tokens.js';
import { DTYPE_BYTES, hiddenSize, kvPlanes, layerBytes, tokenBytes } from './layout.js';

export interface FakeEngineOptions {
  readonly instanceId?: string;
  readonly modelName?: string;
  readonly kind?: 'flash_attn' | 'mla';
  readonly numLayers?: number;
  readonly numBlocks?: number;
  readonly blockSize?: number;
  /** flash_attn */
  readonly numHeads?: number;
  readonly headSize?: number;
  /** mla */
  readonly headDim?: number;
  readonly dtype?: KvDtype;
  /** KV world size and this engine worker's rank (its keys). */
  readonly worldSize?: number;
  readonly rank?: number;
  /** Event worker id (TP rank); default rank. */
  readonly workerId?: number;
  /**
   * Seed of the deterministic KV contents. Engines that must produce identical KV for the same
   * tokens (MLA ranks, a restarted engine) share it; by default it depends on the rank only.
   */
  readonly contentSeed?: number;
}

export interface FakeRequestReport {
  readonly requestId: string;
  readonly promptTokens: number;
  readonly hitTokens: number;
  readonly computedTokens: number;
  readonly storedChunks: number;
  readonly dedupedChunks: number;
  readonly failedChunks: number;
  /** Tokens whose KV in the engine's blocks is wrong after the request (0 = correct). */
  readonly corruptTokens: number;
}

/**
 * An in-process fake inference engine on the cpu backend: a paged KV cache in
 * SharedArrayBuffers (one per layer, flash-attn layout `[2, numBlocks, blockSize, numHeads *
 * headSize]` or MLA `[numBlocks, blockSize, headDim]`), a block allocator, and "compute" that
 * writes deterministic KV: the bytes of token t are a pure function of tokens[0..t], the
 * layer, the plane and the content seed. So a retrieve can be checked byte for byte against
 * what a fresh computation would have produced.
 */
export class FakeEngine {
  readonly instanceId: string;
  readonly modelName: string;
  readonly layout: KvLayoutSpec;
  readonly layers: readonly SharedArrayBuffer[];
  readonly worldSize: number;
  readonly rank: number;
  readonly workerId: number;
  readonly contentSeed: number;
  private readonly words: readonly Uint32Array[];
  private readonly free: number[];
  private readonly tokenWords: number;

  constructor(options: FakeEngineOptions = {}) {
    this.instanceId = options.instanceId ?? `engine-${options.rank ?? 0}`;
    this.modelName = options.modelName ?? 'fake-model';
    const common = {
      numLayers: options.numLayers ?? 2,
      numBlocks: options.numBlocks ?? 256,
      blockSize: options.blockSize ?? 16,
      dtype: options.dtype ?? 'fp16',
    };
    this.layout =
      options.kind === 'mla'
        ? { kind: 'mla', ...common, headDim: options.headDim ?? 32 }
        : { kind: 'flash_attn', ...common, numHeads: options.numHeads ?? 2, headSize: options.headSize ?? 16 };
    if (tokenBytes(this.layout) % 4 !== 0) throw new Error('fake engine: token bytes must be a multiple of 4');
    this.worldSize = options.worldSize ?? 1;
    this.rank = options.rank ?? 0;
    this.workerId = options.workerId ?? this.rank;
    this.contentSeed = options.contentSeed ?? 0x5eed0000 + this.rank;
    const bytes = layerBytes(this.layout);
    this.layers = Array.from({ length: this.layout.numLayers }, () => new SharedArrayBuffer(bytes));
    this.words = this.layers.map((sab) => new Uint32Array(sab));
    this.tokenWords = tokenBytes(this.layout) / 4;
    this.free = Array.from({ length: this.layout.numBlocks }, (_, i) => this.layout.numBlocks - 1 - i);
  }

  /** Registers this engine's KV cache with the server. */
  register(server: CacheServer): Promise<void> {
    return server.registerKvCache({
      instanceId: this.instanceId,
      modelName: this.modelName,
      worldSize: this.worldSize,
      rank: this.rank,
      workerId: this.workerId,
      layout: this.layout,
      memory: { backend: 'cpu', layers: this.layers },
    });
  }

  get freeBlocks(): number {
    return this.free.length;
  }

  /** Blocks for `tokens` tokens; throws when the engine is out of blocks. */
  allocateBlocks(tokens: number): number[] {
    const n = Math.ceil(tokens / this.layout.blockSize);
    if (n > this.free.length) throw new Error('fake engine: out of KV blocks');
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(this.free.pop() as number);
    return out;
  }

  releaseBlocks(blockIds: readonly number[]): void {
    for (const b of blockIds) this.free.push(b);
  }

  /** Zeroes the blocks (so a later retrieve is provably what filled them). */
  zeroBlocks(blockIds: readonly number[]): void {
    const { blockSize, numBlocks } = this.layout;
    const tw = this.tokenWords;
    for (const w of this.words) {
      for (let k = 0; k < kvPlanes(this.layout); k++) {
        for (const b of blockIds) {
          const at = (k * numBlocks + b) * blockSize * tw;
          w.fill(0, at, at + blockSize * tw);
        }
      }
    }
  }

  /** "Runs the forward pass" for tokens `[from, to)`: writes their KV into the blocks. */
  computeKv(tokens: TokenIds, blockIds: readonly number[], from: number, to: number): void {
    this.walk(tokens, blockIds, from, to, (w, at, seed) => {
      let x = seed | 1;
      for (let i = 0; i < this.tokenWords; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        w[at + i] = x >>> 0;
      }
      return true;
    });
  }

  /** Tokens in `[from, to)` whose KV differs from what {@link computeKv} writes. */
  verifyKv(tokens: TokenIds, blockIds: readonly number[], from: number, to: number): number {
    let bad = 0;
    this.walk(tokens, blockIds, from, to, (w, at, seed, first) => {
      let x = seed | 1;
      for (let i = 0; i < this.tokenWords; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        if (w[at + i] !== x >>> 0) {
          if (first) bad++;
          return false;
        }
      }
      return true;
    });
    return bad;
  }

  /** Calls `visit` for every (token, layer, plane) of `[from, to)`; `first` is true once per token. */
  private walk(
    tokens: TokenIds,
    blockIds: readonly number[],
    from: number,
    to: number,
    visit: (w: Uint32Array, at: number, seed: number, first: boolean) => boolean,
  ): void {
    const { blockSize, numBlocks } = this.layout;
    const planes = kvPlanes(this.layout);
    const tw = this.tokenWords;
    let h = this.contentSeed >>> 0;
    for (let t = 0; t < to; t++) {
      h = Math.imul(h ^ tokens[t], 0x9e3779b1) >>> 0;
      h = (h ^ (h >>> 15)) >>> 0;
      if (t < from) continue;
      const block = blockIds[Math.floor(t / blockSize)];
      const pos = t % blockSize;
      let tokenOk = true;
      for (let l = 0; l < this.words.length; l++) {
        for (let k = 0; k < planes; k++) {
          const at = ((k * numBlocks + block) * blockSize + pos) * tw;
          const seed = (h ^ Math.imul(l + 1, 0x85ebca6b) ^ Math.imul(k + 1, 0xc2b2ae35)) >>> 0;
          if (!visit(this.words[l], at, seed, tokenOk)) tokenOk = false;
        }
      }
    }
  }

  /**
   * One request as an engine would run it: lookup → query → retrieve the hit prefix into fresh
   * blocks → compute the rest → store the new full chunks → end the session; then check every
   * token's KV. Blocks are released at the end.
   */
  async runRequest(
    server: CacheServer,
    req: {
      readonly requestId: string;
      readonly tokens: TokenIds;
      readonly cacheSalt?: string;
      readonly compute?: boolean;
    },
  ): Promise<FakeRequestReport> {
    const { requestId, tokens } = req;
    const salt = req.cacheSalt === undefined ? {} : { cacheSalt: req.cacheSalt };
    const chunk = server.chunkSize;
    const bs = this.layout.blockSize;
    await server.lookup({ requestId, modelName: this.modelName, tokens, ...salt });
    const hitChunks = (await server.queryPrefetchStatus(requestId)) ?? 0;
    let hitTokens = hitChunks * chunk;
    const blocks = this.allocateBlocks(tokens.length);
    try {
      if (hitTokens > 0) {
        const r = await server.retrieve({
          requestId,
          instanceId: this.instanceId,
          tokens,
          start: 0,
          end: hitTokens,
          blockIds: blocks.slice(0, hitTokens / bs),
          ...salt,
        });
        if (!r.ok) hitTokens = 0;
      }
      if (req.compute !== false) this.computeKv(tokens, blocks, hitTokens, tokens.length);
      const full = Math.floor(tokens.length / chunk) * chunk;
      let stored = { storedChunks: 0, dedupedChunks: 0, failedChunks: 0 };
      if (full > hitTokens) {
        stored = await server.store({
          requestId,
          instanceId: this.instanceId,
          tokens,
          start: hitTokens,
          end: full,
          blockIds: blocks.slice(hitTokens / bs, full / bs),
          ...salt,
        });
      }
      await server.endSession(requestId);
      const corruptTokens = req.compute === false ? 0 : this.verifyKv(tokens, blocks, 0, tokens.length);
      return {
        requestId,
        promptTokens: tokens.length,
        hitTokens,
        computedTokens: tokens.length - hitTokens,
        storedChunks: stored.storedChunks,
        dedupedChunks: stored.dedupedChunks,
        failedChunks: stored.failedChunks,
        corruptTokens,
      };
    } finally {
      this.releaseBlocks(blocks);
    }
  }
}

/** Deterministic pseudo-random token ids (a prompt), from a seed. */
export function fakePrompt(length: number, seed: number, vocab = 128_256): Uint32Array {
  const out = new Uint32Array(length);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) % vocab;
  }
  return out;
}

export { DTYPE_BYTES, hiddenSize };
