/**
 * The GPU worker's public contract (types only). The server and tests program against this;
 * the worker thread implements it for the `cpu` and `cuda` backends.
 *
 * Vocabulary: an *instance* is one engine worker's registered KV cache (one rank). *Host
 * memory* is kvmp's L1 pool: SharedArrayBuffer segments that every thread can read and write
 * (on `cuda` the worker pins them with cuMemHostRegister). A *chunk* is `chunkTokens` tokens of
 * KV laid out in host memory as `[kv, layers, chunkTokens, hidden]` (kv = 2 for flash-attn,
 * 1 for MLA).
 */

export type KvDtype = 'fp32' | 'fp16' | 'bf16' | 'fp8_e4m3' | 'fp8_e5m2' | 'int8' | 'uint8';

/** vLLM flash-attn: per layer `[2, numBlocks, blockSize, numHeads, headSize]`. */
export interface FlashAttnLayoutSpec {
  readonly kind: 'flash_attn';
  readonly numLayers: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly numHeads: number;
  readonly headSize: number;
  readonly dtype: KvDtype;
}

/** MLA (DeepSeek-style): per layer `[numBlocks, blockSize, headDim]`. */
export interface MlaLayoutSpec {
  readonly kind: 'mla';
  readonly numLayers: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly headDim: number;
  readonly dtype: KvDtype;
}

export type KvLayoutSpec = FlashAttnLayoutSpec | MlaLayoutSpec;

/** cpu backend: the engine's "device" KV cache, one SharedArrayBuffer per layer, GPU layout. */
export interface CpuKvMemory {
  readonly backend: 'cpu';
  readonly layers: readonly SharedArrayBuffer[];
}

/** cuda backend: per-layer device memory shared by the engine as raw CUDA IPC handles. */
export interface CudaKvMemory {
  readonly backend: 'cuda';
  /** Per layer: 64-byte cudaIpcMemHandle_t, plus a byte offset into that allocation. */
  readonly layers: readonly { readonly ipcHandle: Uint8Array; readonly offset: number }[];
  /** Device UUID the handles belong to (checked against the worker's device). */
  readonly deviceUuid?: string;
}

export type KvMemory = CpuKvMemory | CudaKvMemory;

/** Where one chunk lives in kvmp host memory. */
export interface HostChunkRef {
  /** Index into the registered host segments. */
  readonly segment: number;
  /** Byte offset of the chunk in that segment. */
  readonly offset: number;
}

/** 64-byte cudaIpcEventHandle_t (language-neutral; no pickles). */
export type IpcEventHandle = Uint8Array;

interface CopyPlanBase {
  readonly instanceId: string;
  /** For events and spans. */
  readonly sessionId: string;
  /** Operation id (from `EventPublisher.nextOpId()`), echoed in events and the result. */
  readonly opId: number;
  /** Tensor-parallel rank, echoed in events. */
  readonly workerId?: number;
  readonly modelName: string;
  readonly engineId: string;
  /** Engine block ids covering the op's tokens: token t lives in block `blockIds[t / blockSize]`. */
  readonly blockIds: readonly number[];
  /** Tokens per chunk; a multiple of the layout's block size. */
  readonly chunkTokens: number;
  /** Chunk i covers tokens [i·chunkTokens, (i+1)·chunkTokens) of the op. */
  readonly chunks: readonly HostChunkRef[];
  /** Wait on this engine event before copying (store: the forward pass must have written KV). */
  readonly waitEvent?: IpcEventHandle;
  /**
   * dtype the caller expects the instance's KV (and so the host chunks) to hold. Optional; when
   * given and different from the registered layout's dtype the plan is rejected.
   */
  readonly dtype?: KvDtype;
}

export interface StorePlan extends CopyPlanBase {}

export interface RetrievePlan extends CopyPlanBase {
  /** Leave the first N tokens of the engine's blocks untouched (already computed there). */
  readonly skipFirstTokens?: number;
}

/**
 * Why an operation failed:
 * - `invalid_plan`: rejected by validation before anything was enqueued (a caller bug);
 * - `unknown_instance`: no KV cache registered under `instanceId`;
 * - `cancelled`: unregistered or closed before the copy finished (partial bytes must not be used);
 * - `copy_failed`: the backend failed while copying (e.g. a CUDA error);
 * - `worker_gone`: the GPU worker thread was closed or died; reported by the client side.
 */
export type CopyFailure = 'invalid_plan' | 'unknown_instance' | 'cancelled' | 'copy_failed' | 'worker_gone';

export interface CopyResult {
  readonly opId: number;
  readonly ok: boolean;
  /** Bytes moved (0 on failure). */
  readonly bytes: number;
  /** Tokens moved (retrieve: excludes `skipFirstTokens`; 0 on failure). */
  readonly tokens: number;
  /** Failure reason; absent on success. Also published as the END event's `error`. */
  readonly error?: string;
  /** Failure class; absent on success. */
  readonly failure?: CopyFailure;
  /** Epoch ns (as float) when the stream reached the start / end of the copy. */
  readonly startNs: number;
  readonly endNs: number;
  /**
   * Event recorded after the copy, for the engine to wait on. cuda: a 64-byte
   * cudaIpcEventHandle_t. cpu: a CPU event (see `createCpuEvent`), signalled after the copy.
   */
  readonly doneEvent?: IpcEventHandle;
}

export interface GpuWorkerOptions {
  readonly backend: 'cpu' | 'cuda';
  /** CUDA device ordinal (cuda backend). */
  readonly device?: number;
  /**
   * Event ring for GPU-ordered MP_STORE/RETRIEVE START/END events, published on the thread that
   * receives each result (not the worker thread); none → no events.
   */
  readonly ring?: import('@kvmp/tracing').RingHandle;
  /** `device` field of the published events; default `cpu` or `cuda:<device>`. */
  readonly deviceLabel?: string;
}

/** What `registerKvCache` derived from a layout (also available as `describeKvLayout`). */
export interface KvLayoutInfo {
  readonly kind: KvLayoutSpec['kind'];
  readonly dtype: KvDtype;
  readonly dtypeBytes: number;
  /** 2 (K and V) for flash-attn, 1 for MLA. */
  readonly kvSize: number;
  readonly numLayers: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  /** Elements per token per layer per kv (flash-attn: numHeads·headSize; MLA: headDim). */
  readonly hidden: number;
  /** Per-layer tensor shape: flash-attn `[2, numBlocks, blockSize, numHeads, headSize]`, MLA `[numBlocks, blockSize, headDim]`. */
  readonly layerShape: readonly number[];
  readonly layerBytes: number;
  /** Bytes of one token in one layer for one of K/V: hidden·dtypeBytes (the contiguous row). */
  readonly rowBytes: number;
  /** Bytes of one token across all layers and K/V (what a chunk holds per token). */
  readonly bytesPerToken: number;
}

export interface GpuWorkerInfo {
  readonly backend: 'cpu' | 'cuda';
  /** cuda: device name, compute capability, driver version; cpu: `cpu`. */
  readonly device: string;
  readonly hostSegments: number;
  readonly instances: readonly string[];
}

/** The typed API of the GPU worker thread, as seen from any other thread. */
export interface GpuWorker {
  readonly backend: 'cpu' | 'cuda';
  /**
   * Adds host segments (appended: the first new one gets index `previous count`); resolves with
   * the index of the first. cuda pins them with cuMemHostRegister. Rejects on bad input.
   */
  registerHostMemory(segments: readonly SharedArrayBuffer[]): Promise<number>;
  /** Validates the layout against the memory; replaces an existing registration. Rejects with a clear message. */
  registerKvCache(instanceId: string, layout: KvLayoutSpec, memory: KvMemory): Promise<KvLayoutInfo>;
  /** Cancels the instance's queued operations (they resolve with `failure: 'cancelled'`) and releases it. */
  unregisterKvCache(instanceId: string): Promise<void>;
  /**
   * Validates, enqueues on the instance's stream, resolves on completion. Never rejects for copy
   * or validation failures: those resolve `{ ok: false, failure, error }` and publish START/END.
   */
  store(plan: StorePlan): Promise<CopyResult>;
  retrieve(plan: RetrievePlan): Promise<CopyResult>;
  info(): Promise<GpuWorkerInfo>;
  /** Cancels what is queued, releases memory and streams, ends the thread. Idempotent. */
  close(): Promise<void>;
}
