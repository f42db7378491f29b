export type * from './api.js';
export { spawnGpuWorker } from './client/gpu-worker-client.js';
export { isCudaUnavailable, NO_CUDA_DRIVER } from './cuda/cuda-error.js';
export { DTYPE_BYTES } from './layout/dtype.js';
export { chunkBytes, describeKvLayout } from './layout/kv-layout.js';
export { KvValidationError } from './layout/validation-error.js';
export { cpuEventSignalled, createCpuEvent, isCpuEvent, signalCpuEvent, waitCpuEvent } from './shared/cpu-event.js';
