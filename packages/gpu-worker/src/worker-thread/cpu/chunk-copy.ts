import type { ResolvedCopy } from '../../layout/copy-plan.js';
import { chunkRuns } from './block-runs.js';

/**
 * Copies chunk `c` of a plan between the engine's per-layer buffers (`[kv, numBlocks, blockSize,
 * hidden]` each) and the host chunk `[kv, layers, chunkTokens, hidden]`: gather for store,
 * scatter (honouring skipFirstTokens) for retrieve. Returns the bytes copied.
 */
export function copyChunk(copy: ResolvedCopy, c: number, layers: readonly Uint8Array[], host: Uint8Array): number {
  const { layout, chunkTokens: T, blocksPerChunk } = copy;
  const { blockSize, rowBytes: row, numLayers: L, kvSize: K, numBlocks } = layout;
  const skip = Math.min(Math.max(copy.skipTokens - c * T, 0), T);
  if (skip === T) return 0;
  const runs = chunkRuns(copy.blockIds, c * blocksPerChunk, blocksPerChunk, blockSize, skip);
  const chunkBase = copy.chunkOffsets[c];
  const store = copy.direction === 'store';
  let bytes = 0;
  for (let kv = 0; kv < K; kv++) {
    const kvBase = kv * numBlocks * blockSize * row;
    for (let layer = 0; layer < L; layer++) {
      const mem = layers[layer];
      const hostBase = chunkBase + (kv * L + layer) * T * row;
      for (let r = 0; r < runs.length; r += 3) {
        const h = hostBase + runs[r] * row;
        const m = kvBase + runs[r + 1] * row;
        const len = runs[r + 2] * row;
        if (store) host.set(mem.subarray(m, m + len), h);
        else mem.set(host.subarray(h, h + len), m);
        bytes += len;
      }
    }
  }
  return bytes;
}
