/**
 * The GPU worker contract as the server uses it: the types come from `@kvmp/gpu-worker`, and
 * the server needs only these methods of a worker, so a gateway may pass its own
 * (`config.gpu.worker`) as long as it honours the same contract.
 */
import type { GpuWorker } from '@kvmp/gpu-worker';

export type {
  CopyResult,
  CpuKvMemory,
  CudaKvMemory,
  FlashAttnLayoutSpec,
  HostChunkRef,
  KvDtype,
  KvLayoutSpec,
  KvMemory,
  MlaLayoutSpec,
  RetrievePlan,
  StorePlan,
} from '@kvmp/gpu-worker';

export type GpuWorkerLike = Pick<
  GpuWorker,
  'backend' | 'registerHostMemory' | 'registerKvCache' | 'unregisterKvCache' | 'store' | 'retrieve' | 'close'
>;
