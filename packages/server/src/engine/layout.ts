import { DTYPE_BYTES } from '@kvmp/gpu-worker';
import { KvmpServerError } from '../errors.js';
import type { KvLayoutSpec } from '../gpu/contract.js';

// One table of element sizes, the GPU worker's: the server sizes chunks exactly as it copies them.
export { DTYPE_BYTES };

/** K and V (flash-attn) or one latent (MLA). */
export function kvPlanes(layout: KvLayoutSpec): number {
  return layout.kind === 'mla' ? 1 : 2;
}

/** Elements per token per layer per plane (`numHeads * headSize`, or `headDim`). */
export function hiddenSize(layout: KvLayoutSpec): number {
  return layout.kind === 'mla' ? layout.headDim : layout.numHeads * layout.headSize;
}

/** Bytes of one token of one layer and plane. */
export function tokenBytes(layout: KvLayoutSpec): number {
  return hiddenSize(layout) * DTYPE_BYTES[layout.dtype];
}

/** Bytes of one chunk in host memory: `[kv, layers, chunkTokens, hidden]`. */
export function chunkBytes(layout: KvLayoutSpec, chunkTokens: number): number {
  return kvPlanes(layout) * layout.numLayers * chunkTokens * tokenBytes(layout);
}

/** Bytes of one engine layer buffer: `[kv, numBlocks, blockSize, hidden]`. */
export function layerBytes(layout: KvLayoutSpec): number {
  return kvPlanes(layout) * layout.numBlocks * layout.blockSize * tokenBytes(layout);
}

function positiveInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

export function checkLayout(layout: unknown, chunkTokens: number): KvLayoutSpec {
  if (typeof layout !== 'object' || layout === null)
    throw new KvmpServerError('BAD_LAYOUT', 'layout must be an object');
  const l = layout as Record<string, unknown>;
  if (l.kind !== 'flash_attn' && l.kind !== 'mla')
    throw new KvmpServerError('BAD_LAYOUT', 'layout.kind must be flash_attn or mla');
  const dims =
    l.kind === 'mla'
      ? ['numLayers', 'numBlocks', 'blockSize', 'headDim']
      : ['numLayers', 'numBlocks', 'blockSize', 'numHeads', 'headSize'];
  for (const d of dims)
    if (!positiveInt(l[d])) throw new KvmpServerError('BAD_LAYOUT', `layout.${d} must be a positive integer`);
  if (typeof l.dtype !== 'string' || !(l.dtype in DTYPE_BYTES))
    throw new KvmpServerError('BAD_LAYOUT', 'layout.dtype is not supported');
  const spec = layout as KvLayoutSpec;
  if (chunkTokens % spec.blockSize !== 0) {
    throw new KvmpServerError(
      'BAD_LAYOUT',
      `chunk size ${chunkTokens} is not a multiple of block size ${spec.blockSize}`,
    );
  }
  return spec;
}
