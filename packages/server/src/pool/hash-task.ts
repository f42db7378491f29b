/**
 * Runs on a piscina worker thread. Pure function of its input: no L1 state, no sessions, no
 * events. Hashes a run of chained chunks of one prompt.
 */
import { ChunkHasher } from '../keys/chunk-hasher.js';

export interface HashTask {
  /** Chain input of the first chunk (32 bytes). */
  readonly prev: Uint8Array;
  /** Exactly `count * chunkTokens` tokens. */
  readonly tokens: Uint32Array;
  readonly chunkTokens: number;
  readonly count: number;
}

let hasher: ChunkHasher | undefined;

export default async function hashTask(task: HashTask | { readonly noop: true }): Promise<Uint8Array | null> {
  if ('noop' in task) return null;
  hasher ??= await ChunkHasher.create();
  return hasher.hashChunks(task.prev, task.tokens, 0, task.chunkTokens, task.count);
}
