/**
 * The subset of the GPU worker's contract (`packages/gpu-worker/src/api.ts`) that the server
 * programs against, restated structurally so the server compiles against the contract and not
 * against one implementation. The real `@kvmp/gpu-worker` satisfies it.
 */
export type KvDtype = 'fp32' | 'fp16' | 'bf16' | 'fp8_e4m3' | 'fp8_e5m2' | 'int8' | 'uint8';

export interface FlashAttnLayoutSpec {
  readonly kind: 'flash_attn';
  readonly numLayers: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly numHeads: number;
  readonly headSize: number;
  readonly dtype: KvDtype;
}

export interface MlaLayoutSpec {
  readonly kind: 'mla';
  readonly numLayers: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly headDim: number;
  readonly dtype: KvDtype;
}

export type KvLayoutSpec = FlashAttnLayoutSpec | MlaLayoutSpec;

export interface CpuKvMemory {
  readonly backend: 'cpu';
  readonly layers: readonly SharedArrayBuffer[];
}

export interface CudaKvMemory {
  readonly backend: 'cuda';
  readonly layers: readonly { readonly ipcHandle: Uint8Array; readonly offset: number }[];
  readonly deviceUuid?: string;
}

export type KvMemory = CpuKvMemory | CudaKvMemory;

export interface HostChunkRef {
  readonly segment: number;
  readonly offset: number;
}

interface CopyPlanBase {
  readonly instanceId: string;
  readonly sessionId: string;
  readonly opId: number;
  readonly workerId?: number;
  readonly modelName: string;
  readonly engineId: string;
  readonly blockIds: readonly number[];
  readonly chunkTokens: number;
  readonly chunks: readonly HostChunkRef[];
  readonly waitEvent?: Uint8Array;
  readonly dtype?: KvDtype;
}

export interface StorePlan extends CopyPlanBase {}

export interface RetrievePlan extends CopyPlanBase {
  readonly skipFirstTokens?: number;
}

export interface CopyResult {
  readonly opId: number;
  readonly ok: boolean;
  readonly bytes: number;
  readonly tokens: number;
  readonly error?: string;
  readonly startNs: number;
  readonly endNs: number;
  readonly doneEvent?: Uint8Array;
}

export interface GpuWorkerLike {
  readonly backend: 'cpu' | 'cuda';
  /** Appends segments; resolves with the index of the first (undefined: 0). */
  registerHostMemory(segments: readonly SharedArrayBuffer[]): Promise<number | undefined>;
  registerKvCache(instanceId: string, layout: KvLayoutSpec, memory: KvMemory): Promise<unknown>;
  unregisterKvCache(instanceId: string): Promise<void>;
  store(plan: StorePlan): Promise<CopyResult>;
  retrieve(plan: RetrievePlan): Promise<CopyResult>;
  close(): Promise<void>;
}
