import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { ChunkHasher } from '../keys/chunk-hasher.js';
import type { HashTask } from './hash-task.js';

export interface HashPoolOptions {
  /** Worker threads; default `max(1, availableParallelism() - 2)` (server + GPU worker keep a core each). */
  readonly threads?: number;
  /**
   * Hash runs of at least this many chunks go to the pool; shorter ones are hashed inline on
   * the server thread. Default 48 (≈ 12k tokens ≈ 150 µs of hashing, above the ≈ 90 µs pool
   * round trip). See docs/design/actors.md.
   */
  readonly offloadMinChunks?: number;
}

/**
 * Where chained hashing runs. Short runs (the common case: one scheduler step, or a prompt of
 * a few thousand tokens) are hashed inline, because a piscina round trip costs more than the
 * hashing. Long prompts go to the pool so that one session's hashing does not stall the
 * others' messages on the server thread.
 */
export class HashPool {
  readonly offloadMinChunks: number;
  readonly threads: number;
  private readonly piscina: Piscina;
  private offloaded = 0;
  private inline = 0;

  constructor(
    private readonly local: ChunkHasher,
    options: HashPoolOptions = {},
  ) {
    this.threads = Math.max(1, options.threads ?? availableParallelism() - 2);
    this.offloadMinChunks = Math.max(1, options.offloadMinChunks ?? 48);
    this.piscina = new Piscina({
      filename: new URL('./hash-task.js', import.meta.url).href,
      minThreads: 1,
      maxThreads: this.threads,
      idleTimeout: 30_000,
      name: 'default',
    });
  }

  /** Hashes `count` chunks of `tokens` starting at chunk `fromChunk`, chained from `prev`. */
  async hash(
    prev: Uint8Array,
    tokens: Uint32Array,
    fromChunk: number,
    chunkTokens: number,
    count: number,
  ): Promise<Uint8Array> {
    if (count < this.offloadMinChunks) {
      this.inline += count;
      return this.local.hashChunks(prev, tokens, fromChunk * chunkTokens, chunkTokens, count);
    }
    this.offloaded += count;
    const slice = tokens.slice(fromChunk * chunkTokens, (fromChunk + count) * chunkTokens);
    const task: HashTask = { prev: prev.slice(), tokens: slice, chunkTokens, count };
    return (await this.piscina.run(task)) as Uint8Array;
  }

  /** A trivial task: measures the pool round trip (bench). */
  async noop(): Promise<void> {
    await this.piscina.run({ noop: true });
  }

  stats(): { threads: number; offloadMinChunks: number; chunksOffloaded: number; chunksInline: number } {
    return {
      threads: this.threads,
      offloadMinChunks: this.offloadMinChunks,
      chunksOffloaded: this.offloaded,
      chunksInline: this.inline,
    };
  }

  async close(): Promise<void> {
    await this.piscina.close();
  }
}
