import type { TraceCarrier } from '@kvmp/tracing';
import type { KvDtype } from '../gpu/contract.js';

/** The KV layout as it travels (snake_case on the wire; camelCase here). */
export interface WireLayout {
  readonly kind: 'flash_attn' | 'mla';
  readonly numLayers: number;
  /** Required for CUDA IPC registration; optional for engine-driven. */
  readonly numBlocks?: number;
  readonly blockSize: number;
  readonly numHeads?: number;
  readonly headSize?: number;
  readonly headDim?: number;
  readonly dtype: KvDtype;
}

export interface InstanceIdentity {
  readonly instanceId: string;
  readonly modelName: string;
  readonly worldSize?: number;
  readonly rank?: number;
  readonly workerId?: number;
  readonly engineId?: string;
}

export interface CudaLayerHandle {
  /** Raw `cudaIpcMemHandle_t` (64 bytes). */
  readonly ipcHandle: Uint8Array;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly dtype: KvDtype;
}

export interface RegisterCudaRequest extends InstanceIdentity {
  readonly layout: WireLayout;
  readonly deviceUuid: string;
  readonly layers: readonly CudaLayerHandle[];
}

export interface RegisterEngineDrivenRequest extends InstanceIdentity {
  readonly layout: WireLayout;
}

export interface EngineDrivenInfo {
  readonly chunkSize: number;
  readonly chunkBytes: number;
  readonly maxChunksPerMessage: number;
  readonly stagingChunks: number;
}

export interface HelloInfo {
  readonly protocolVersion: number;
  readonly server: string;
  readonly chunkSize: number;
  readonly maxMessageBytes: number;
  readonly backend: 'cpu' | 'cuda';
  readonly transferModes: readonly string[];
}

/** Common to every request: an explicit trace carrier, else the caller's active OTel span. */
export interface Traced {
  readonly trace?: TraceCarrier;
}

export interface LookupArgs extends Traced {
  readonly requestId: string;
  readonly modelName: string;
  readonly tokens: readonly number[] | Uint32Array;
  readonly end?: number;
  readonly worldSize?: number;
  readonly workerId?: number;
  readonly tpSize?: number;
  readonly cacheSalt?: string;
}

export interface RangeArgs extends Traced {
  readonly requestId: string;
  readonly instanceId: string;
  readonly tokens: readonly number[] | Uint32Array;
  readonly start?: number;
  readonly end?: number;
  readonly cacheSalt?: string;
}

export interface TransferArgs extends RangeArgs {
  readonly blockIds: readonly number[];
  /** Raw `cudaIpcEventHandle_t` (64 bytes) recorded after the engine's compute. */
  readonly waitEvent?: Uint8Array;
  readonly skipFirstTokens?: number;
}

export interface StoreReply {
  readonly ok: boolean;
  readonly requestedChunks: number;
  readonly storedChunks: number;
  readonly dedupedChunks: number;
  readonly failedChunks: number;
  readonly bytes: number;
  readonly error?: string;
  readonly doneEvent?: Uint8Array;
}

export interface RetrieveReply {
  readonly ok: boolean;
  readonly retrievedChunks: number;
  readonly tokens: number;
  readonly bytes: number;
  readonly error?: string;
  readonly doneEvent?: Uint8Array;
  /** Engine-driven: the chunks' KV bytes, back to back in the wire chunk format. */
  readonly data?: Uint8Array;
}

export interface PrepareStoreReply {
  readonly handle: number;
  readonly chunks: number;
  readonly chunkBytes: number;
  readonly start: number;
  readonly end: number;
}

export interface QueryReply {
  /** Hit chunks; `null` while still loading. */
  readonly hitChunks: number | null;
  readonly hitTokens: number | null;
}

export interface CallOptions {
  /** Per-call timeout (default: the client's). */
  readonly timeoutMs?: number;
}
