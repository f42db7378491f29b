import type { KvLayoutInfo, KvLayoutSpec } from '../api.js';
import { DTYPE_BYTES, isKvDtype } from './dtype.js';
import { checkInt, describe, KvValidationError } from './validation-error.js';

/** Per-layer tensors larger than this cannot be a SharedArrayBuffer or a sane KV layer. */
const MAX_LAYER_BYTES = 2 ** 40;

/**
 * Validates a layout description and derives what the copy engines need. Both supported
 * layouts are, per layer, `[kvSize, numBlocks, blockSize, hidden]` row-major (flash-attn:
 * kvSize 2 and hidden = numHeads·headSize; MLA: kvSize 1 and hidden = headDim), so a block's
 * tokens for one layer and one of K/V are one contiguous run of blockSize·rowBytes bytes.
 */
export function describeKvLayout(spec: KvLayoutSpec): KvLayoutInfo {
  if (spec === null || typeof spec !== 'object')
    throw new KvValidationError('layout', `expected an object, got ${describe(spec)}`);
  const kind = (spec as { kind?: unknown }).kind;
  if (kind !== 'flash_attn' && kind !== 'mla') {
    throw new KvValidationError('layout.kind', `must be 'flash_attn' or 'mla', got ${describe(kind)}`);
  }
  if (!isKvDtype(spec.dtype)) {
    throw new KvValidationError(
      'layout.dtype',
      `unknown dtype ${describe(spec.dtype)} (one of ${Object.keys(DTYPE_BYTES).join(', ')})`,
    );
  }
  const numLayers = checkInt('layout.numLayers', spec.numLayers, 1, 4096);
  const numBlocks = checkInt('layout.numBlocks', spec.numBlocks, 1, 2 ** 31 - 1);
  const blockSize = checkInt('layout.blockSize', spec.blockSize, 1, 65536);
  let hidden: number;
  let kvSize: number;
  let layerShape: number[];
  if (spec.kind === 'flash_attn') {
    const numHeads = checkInt('layout.numHeads', spec.numHeads, 1, 65536);
    const headSize = checkInt('layout.headSize', spec.headSize, 1, 65536);
    kvSize = 2;
    hidden = numHeads * headSize;
    layerShape = [2, numBlocks, blockSize, numHeads, headSize];
  } else {
    const headDim = checkInt('layout.headDim', spec.headDim, 1, 1 << 20);
    kvSize = 1;
    hidden = headDim;
    layerShape = [numBlocks, blockSize, headDim];
  }
  const dtypeBytes = DTYPE_BYTES[spec.dtype];
  const rowBytes = hidden * dtypeBytes;
  const layerBytes = kvSize * numBlocks * blockSize * rowBytes;
  if (layerBytes > MAX_LAYER_BYTES) {
    throw new KvValidationError(
      'layout',
      `one layer would be ${layerBytes} bytes (shape [${layerShape.join(', ')}]), over ${MAX_LAYER_BYTES}`,
    );
  }
  return {
    kind: spec.kind,
    dtype: spec.dtype,
    dtypeBytes,
    kvSize,
    numLayers,
    numBlocks,
    blockSize,
    hidden,
    layerShape,
    layerBytes,
    rowBytes,
    bytesPerToken: kvSize * numLayers * rowBytes,
  };
}

/** Bytes of one host chunk `[kvSize, numLayers, chunkTokens, hidden]`. */
export function chunkBytes(layout: KvLayoutInfo, chunkTokens: number): number {
  return layout.bytesPerToken * chunkTokens;
}
