import { spawnGpuWorker } from '@kvmp/gpu-worker';
import type { RingHandle } from '@kvmp/tracing';
import type { GpuWorkerLike } from './contract.js';

export interface StartGpuWorkerOptions {
  readonly backend: 'cpu' | 'cuda';
  readonly device?: number;
  readonly ring?: RingHandle;
  readonly deviceLabel?: string;
}

/** Starts the GPU worker thread (`@kvmp/gpu-worker`), publishing START/END into `ring`. */
export function startGpuWorker(options: StartGpuWorkerOptions): Promise<GpuWorkerLike> {
  return spawnGpuWorker(options);
}
