import type {
  GpuWorkerInfo,
  GpuWorkerOptions,
  KvLayoutInfo,
  KvLayoutSpec,
  KvMemory,
  RetrievePlan,
  StorePlan,
} from '../api.js';
import type { CopyCompletion } from '../shared/copy-completion.js';
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/cpu-backend.js';
import { GpuWorkerService } from './gpu-worker-service.js';

/**
 * Options that cross to the worker thread at init (structured-clonable). Not the event ring:
 * the worker's START/END are published by the client (see `OpReporter`).
 */
export type WorkerInit = Pick<GpuWorkerOptions, 'backend' | 'device' | 'deviceLabel'>;

/**
 * What comlink exposes: `init` builds the backend on this thread (so a missing CUDA driver is a
 * clean rejection of `spawnGpuWorker`, not a crashed thread), then calls go to the service.
 */
export class WorkerEndpoint {
  private service: GpuWorkerService | undefined;

  async init(options: WorkerInit): Promise<GpuWorkerInfo> {
    if (this.service !== undefined) throw new Error('gpu worker already initialised');
    let backend: Backend;
    if (options.backend === 'cpu') backend = new CpuBackend();
    else if (options.backend === 'cuda') {
      const { createCudaBackend } = await import('./cuda/cuda-backend.js');
      backend = createCudaBackend(options.device ?? 0);
    } else throw new Error(`unknown backend ${JSON.stringify(options.backend)} (expected 'cpu' or 'cuda')`);
    const deviceLabel = options.deviceLabel ?? (options.backend === 'cpu' ? 'cpu' : `cuda:${options.device ?? 0}`);
    this.service = new GpuWorkerService(backend, { deviceLabel });
    return this.service.info();
  }

  registerHostMemory(segments: readonly SharedArrayBuffer[]): number {
    return this.ready().registerHostMemory(segments);
  }

  registerKvCache(instanceId: string, layout: KvLayoutSpec, memory: KvMemory): Promise<KvLayoutInfo> {
    return this.ready().registerKvCache(instanceId, layout, memory);
  }

  unregisterKvCache(instanceId: string): Promise<void> {
    return this.ready().unregisterKvCache(instanceId);
  }

  store(plan: StorePlan): Promise<CopyCompletion> {
    return this.ready().store(plan);
  }

  retrieve(plan: RetrievePlan): Promise<CopyCompletion> {
    return this.ready().retrieve(plan);
  }

  info(): GpuWorkerInfo {
    return this.ready().info();
  }

  async close(): Promise<void> {
    await this.service?.close();
  }

  private ready(): GpuWorkerService {
    if (this.service === undefined) throw new Error('gpu worker not initialised');
    return this.service;
  }
}
