/**
 * Deterministic KV contents for scripts/gpu-check: word i of layer l is a hash of (l, i), so the
 * engine process can fill device memory and both processes can verify any byte without sharing
 * a copy of the data.
 */
export function patternWord(layer: number, wordIndex: number): number {
  let x = (Math.imul(wordIndex, 0x9e3779b1) ^ Math.imul(layer + 1, 0x85ebca6b)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  return x >>> 0;
}

export function fillPattern(layer: number, firstWord: number, out: Uint32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = patternWord(layer, firstWord + i);
}

/** Messages between gpu-check and its engine process. */
export type EngineRequest =
  | {
      readonly type: 'verify';
      readonly mapping: readonly (readonly [target: number, source: number])[];
      readonly skipTokens: number;
    }
  | { readonly type: 'baseline'; readonly bytes: number; readonly reps: number }
  | { readonly type: 'driverTimings'; readonly reps: number }
  | { readonly type: 'exit' };

export type EngineReply =
  | { readonly type: 'ready'; readonly device: string; readonly layerHandles: string[]; readonly forwardDone: string }
  | {
      readonly type: 'verified';
      readonly mismatches: number;
      readonly checkedBytes: number;
      readonly firstMismatch?: string;
    }
  | { readonly type: 'baseline'; readonly d2hGbps: number; readonly h2dGbps: number }
  /** Median µs per driver call, by call (the per-operation calls of the cuda backend). */
  | { readonly type: 'driverTimings'; readonly us: Readonly<Record<string, number>> }
  | { readonly type: 'error'; readonly message: string };

export interface CheckShape {
  readonly numLayers: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly numHeads: number;
  readonly headSize: number;
  readonly chunkTokens: number;
  readonly chunks: number;
}
