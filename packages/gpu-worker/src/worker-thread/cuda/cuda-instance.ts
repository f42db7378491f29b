import type { KvLayoutInfo } from '../../api.js';
import type { CudaDriver, CuHandle, DevicePtr } from '../../cuda/driver.js';
import type { Pollable } from './completion-poller.js';
import { copyUnit } from './kernel-args.js';

/**
 * One registered engine instance on the cuda backend: its own stream (per-instance FIFO, as the
 * cpu backend's queue), device pointers of its layers (opened from CUDA IPC handles), and a
 * staging buffer of one chunk `[kv, layers, chunkTokens, hidden]` that the kernels gather into /
 * scatter from and that moves to/from pinned host memory with one async memcpy.
 */
export class CudaInstance {
  readonly inflight: Pollable[] = [];
  /** Epoch ms when the last enqueued operation is predicted to finish. */
  predictedIdleMs = 0;
  staging: DevicePtr = 0n;
  stagingBytes = 0;
  /** Buffers replaced by a larger staging buffer; freed once the stream is drained. */
  readonly retiredStaging: DevicePtr[] = [];
  readonly unit: 16 | 4 | 1;

  constructor(
    readonly id: string,
    readonly layout: KvLayoutInfo,
    readonly stream: CuHandle,
    readonly layerPtrs: readonly DevicePtr[],
    /** IPC mappings this instance opened (closed at release). */
    readonly mappings: readonly DevicePtr[],
  ) {
    this.unit = copyUnit(layout.rowBytes, layerPtrs);
  }

  /** Grows the staging buffer to at least `bytes`. In-flight work may still use the old one: retire it. */
  ensureStaging(cuda: CudaDriver, bytes: number): DevicePtr {
    if (this.stagingBytes >= bytes) return this.staging;
    if (this.staging !== 0n) this.retiredStaging.push(this.staging);
    this.staging = cuda.memAlloc(bytes);
    this.stagingBytes = bytes;
    return this.staging;
  }

  /** Frees device resources; only after the stream has drained. */
  release(cuda: CudaDriver, closeMapping: (ptr: DevicePtr) => void): void {
    for (const ptr of this.retiredStaging) cuda.memFree(ptr);
    if (this.staging !== 0n) cuda.memFree(this.staging);
    this.retiredStaging.length = 0;
    this.staging = 0n;
    this.stagingBytes = 0;
    for (const ptr of this.mappings) closeMapping(ptr);
    cuda.streamDestroy(this.stream);
  }
}
