import type { KvLayoutInfo, RetrievePlan, StorePlan } from '../api.js';
import { chunkBytes } from './kv-layout.js';
import { checkInt, describe, KvValidationError } from './validation-error.js';

export type CopyDirection = 'store' | 'retrieve';

/** A validated plan in the shape the copy engines consume (typed arrays, derived sizes). */
export interface ResolvedCopy {
  readonly direction: CopyDirection;
  readonly layout: KvLayoutInfo;
  readonly chunkTokens: number;
  readonly blocksPerChunk: number;
  readonly numChunks: number;
  /** blocksPerChunk · numChunks engine block ids, chunk-major. */
  readonly blockIds: Int32Array;
  readonly chunkSegments: Int32Array;
  readonly chunkOffsets: Float64Array;
  readonly chunkBytes: number;
  /** Tokens covered by the plan (numChunks · chunkTokens). */
  readonly numTokens: number;
  /** Retrieve: tokens at the start left untouched in the engine's blocks; store: 0. */
  readonly skipTokens: number;
  /** Tokens actually copied: numTokens − skipTokens. */
  readonly movedTokens: number;
  readonly bytes: number;
  readonly waitEvent: Uint8Array | undefined;
}

export interface PlanLimits {
  /** Backend limit on blocks per chunk (cuda passes block ids by value to its kernels). */
  readonly maxBlocksPerChunk?: number;
}

/**
 * Validates a store/retrieve plan against the instance layout and the host segments and
 * resolves it. Throws {@link KvValidationError} naming the field and the values; nothing is
 * enqueued for a plan that throws.
 */
export function resolveCopyPlan(
  direction: CopyDirection,
  plan: StorePlan | RetrievePlan,
  layout: KvLayoutInfo,
  segmentBytes: readonly number[],
  limits: PlanLimits = {},
): ResolvedCopy {
  if (plan.dtype !== undefined && plan.dtype !== layout.dtype) {
    throw new KvValidationError('dtype', `plan expects ${describe(plan.dtype)} but instance KV is ${layout.dtype}`);
  }
  const chunkTokens = checkInt('chunkTokens', plan.chunkTokens, 1, 1 << 24);
  if (chunkTokens % layout.blockSize !== 0) {
    throw new KvValidationError(
      'chunkTokens',
      `${chunkTokens} is not a multiple of the layout's blockSize ${layout.blockSize}`,
    );
  }
  const blocksPerChunk = chunkTokens / layout.blockSize;
  if (limits.maxBlocksPerChunk !== undefined && blocksPerChunk > limits.maxBlocksPerChunk) {
    throw new KvValidationError(
      'chunkTokens',
      `${chunkTokens} tokens = ${blocksPerChunk} blocks per chunk, over this backend's limit of ${limits.maxBlocksPerChunk}`,
    );
  }
  if (!Array.isArray(plan.chunks))
    throw new KvValidationError('chunks', `must be an array, got ${describe(plan.chunks)}`);
  if (!Array.isArray(plan.blockIds) && !ArrayBuffer.isView(plan.blockIds)) {
    throw new KvValidationError('blockIds', `must be an array, got ${describe(plan.blockIds)}`);
  }
  const numChunks = plan.chunks.length;
  if (numChunks === 0) throw new KvValidationError('chunks', 'must not be empty');
  const ids = plan.blockIds;
  if (ids.length !== numChunks * blocksPerChunk) {
    throw new KvValidationError(
      'blockIds',
      `${ids.length} block ids for ${numChunks} chunks of ${chunkTokens} tokens (blockSize ${layout.blockSize}); expected ${numChunks * blocksPerChunk}`,
    );
  }
  const blockIds = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const b = ids[i];
    if (!Number.isInteger(b) || b < 0 || b >= layout.numBlocks) {
      throw new KvValidationError(`blockIds[${i}]`, `block id ${describe(b)} out of range [0, ${layout.numBlocks})`);
    }
    blockIds[i] = b;
  }

  const bytesPerChunk = chunkBytes(layout, chunkTokens);
  const chunkSegments = new Int32Array(numChunks);
  const chunkOffsets = new Float64Array(numChunks);
  for (let c = 0; c < numChunks; c++) {
    const ref = plan.chunks[c];
    if (ref === null || typeof ref !== 'object')
      throw new KvValidationError(`chunks[${c}]`, `expected { segment, offset }, got ${describe(ref)}`);
    const segment = checkInt(`chunks[${c}].segment`, ref.segment, 0);
    if (segment >= segmentBytes.length) {
      throw new KvValidationError(
        `chunks[${c}].segment`,
        `segment ${segment} is not registered (${segmentBytes.length} host segments)`,
      );
    }
    const offset = checkInt(`chunks[${c}].offset`, ref.offset, 0);
    if (offset + bytesPerChunk > segmentBytes[segment]) {
      throw new KvValidationError(
        `chunks[${c}]`,
        `bytes [${offset}, ${offset + bytesPerChunk}) run past the end of segment ${segment} (${segmentBytes[segment]} bytes)`,
      );
    }
    chunkSegments[c] = segment;
    chunkOffsets[c] = offset;
  }

  const numTokens = numChunks * chunkTokens;
  let skipTokens = 0;
  if (direction === 'retrieve') {
    const skip = (plan as RetrievePlan).skipFirstTokens;
    if (skip !== undefined) skipTokens = checkInt('skipFirstTokens', skip, 0, numTokens);
    checkDistinctBlocks(blockIds, Math.floor(skipTokens / layout.blockSize));
  } else {
    // Two chunks written to overlapping host bytes would race; that is always a caller bug.
    checkNoOverlap(chunkSegments, chunkOffsets, bytesPerChunk);
  }

  let waitEvent: Uint8Array | undefined;
  if (plan.waitEvent !== undefined) {
    if (!(plan.waitEvent instanceof Uint8Array) || plan.waitEvent.byteLength !== 64) {
      throw new KvValidationError('waitEvent', `must be a 64-byte Uint8Array, got ${describeBytes(plan.waitEvent)}`);
    }
    waitEvent = plan.waitEvent;
  }
  const movedTokens = numTokens - skipTokens;
  return {
    direction,
    layout,
    chunkTokens,
    blocksPerChunk,
    numChunks,
    blockIds,
    chunkSegments,
    chunkOffsets,
    chunkBytes: bytesPerChunk,
    numTokens,
    skipTokens,
    movedTokens,
    bytes: movedTokens * layout.bytesPerToken,
    waitEvent,
  };
}

/** Retrieve writes every (non-skipped) block once; a repeated id would make the result order-dependent. */
function checkDistinctBlocks(blockIds: Int32Array, firstWritten: number): void {
  const seen = new Map<number, number>();
  for (let i = firstWritten; i < blockIds.length; i++) {
    const prev = seen.get(blockIds[i]);
    if (prev !== undefined) {
      throw new KvValidationError(
        `blockIds[${i}]`,
        `block id ${blockIds[i]} is written twice (also blockIds[${prev}])`,
      );
    }
    seen.set(blockIds[i], i);
  }
}

function checkNoOverlap(segments: Int32Array, offsets: Float64Array, bytes: number): void {
  const order = Array.from(segments.keys()).sort((a, b) => segments[a] - segments[b] || offsets[a] - offsets[b]);
  for (let k = 1; k < order.length; k++) {
    const a = order[k - 1];
    const b = order[k];
    if (segments[a] === segments[b] && offsets[a] + bytes > offsets[b]) {
      throw new KvValidationError(
        `chunks[${b}]`,
        `host bytes overlap chunks[${a}] (segment ${segments[a]}, offsets ${offsets[a]} and ${offsets[b]}, ${bytes} bytes each)`,
      );
    }
  }
}

function describeBytes(value: unknown): string {
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength} bytes)`;
  return describe(value);
}
