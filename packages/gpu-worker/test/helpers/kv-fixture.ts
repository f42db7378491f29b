/**
 * Test fixtures: an in-process "engine" KV cache of SharedArrayBuffers in the GPU layout, host
 * segments, plans, and a per-token reference of where every byte must go (written independently
 * of the copy engine's run merging, so the two can disagree).
 */
import {
  describeKvLayout,
  type HostChunkRef,
  type KvDtype,
  type KvLayoutInfo,
  type KvLayoutSpec,
  type RetrievePlan,
  type StorePlan,
} from '../../src/index.js';

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

export function shuffle<T>(r: () => number, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

export function fillRandom(bytes: Uint8Array, r: () => number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (r() * 256) | 0;
}

export interface EngineKv {
  readonly spec: KvLayoutSpec;
  readonly info: KvLayoutInfo;
  readonly layers: SharedArrayBuffer[];
  readonly views: Uint8Array[];
}

export function makeEngineKv(spec: KvLayoutSpec, r?: () => number): EngineKv {
  const info = describeKvLayout(spec);
  const layers = Array.from({ length: info.numLayers }, () => new SharedArrayBuffer(info.layerBytes));
  const views = layers.map((l) => new Uint8Array(l));
  if (r !== undefined) for (const v of views) fillRandom(v, r);
  return { spec, info, layers, views };
}

export function randomSpec(r: () => number): KvLayoutSpec {
  const dtypes: KvDtype[] = ['fp32', 'fp16', 'bf16', 'fp8_e4m3', 'int8'];
  const dtype = dtypes[randInt(r, 0, dtypes.length - 1)];
  const common = {
    numLayers: randInt(r, 1, 4),
    numBlocks: randInt(r, 8, 24),
    blockSize: [1, 2, 4, 8][randInt(r, 0, 3)],
    dtype,
  };
  return r() < 0.5
    ? { kind: 'flash_attn', ...common, numHeads: randInt(r, 1, 3), headSize: [2, 4, 8, 6][randInt(r, 0, 3)] }
    : { kind: 'mla', ...common, headDim: [3, 8, 16][randInt(r, 0, 2)] };
}

/** Byte offset of (kv, layer, token-in-op) in the engine layer buffer. */
export function engineOffset(info: KvLayoutInfo, blockIds: readonly number[], kv: number, token: number): number {
  const block = blockIds[Math.floor(token / info.blockSize)];
  return ((kv * info.numBlocks + block) * info.blockSize + (token % info.blockSize)) * info.rowBytes;
}

/** Byte offset of (kv, layer, token-in-op) in host memory. */
export function hostOffset(
  info: KvLayoutInfo,
  chunks: readonly HostChunkRef[],
  chunkTokens: number,
  kv: number,
  layer: number,
  token: number,
): number {
  const c = Math.floor(token / chunkTokens);
  return chunks[c].offset + ((kv * info.numLayers + layer) * chunkTokens + (token % chunkTokens)) * info.rowBytes;
}

/** Calls `visit(engineView, engineByte, hostByte)` for every row (token·layer·kv) of an op, token order. */
export function forEachRow(
  kv: EngineKv,
  blockIds: readonly number[],
  chunks: readonly HostChunkRef[],
  chunkTokens: number,
  visit: (layer: number, engineByte: number, hostByte: number, token: number) => void,
): void {
  const { info } = kv;
  const tokens = chunks.length * chunkTokens;
  for (let t = 0; t < tokens; t++) {
    for (let k = 0; k < info.kvSize; k++) {
      for (let l = 0; l < info.numLayers; l++) {
        visit(l, engineOffset(info, blockIds, k, t), hostOffset(info, chunks, chunkTokens, k, l, t), t);
      }
    }
  }
}

let nextOp = 1;

export function plan(
  instanceId: string,
  blockIds: readonly number[],
  chunkTokens: number,
  chunks: readonly HostChunkRef[],
  extra: Partial<RetrievePlan> = {},
): StorePlan & RetrievePlan {
  return {
    instanceId,
    sessionId: `req-${nextOp}`,
    opId: nextOp++,
    modelName: 'test-model',
    engineId: 'engine-0',
    workerId: 0,
    blockIds,
    chunkTokens,
    chunks,
    ...extra,
  };
}
