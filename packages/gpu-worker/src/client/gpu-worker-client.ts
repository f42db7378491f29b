import { Worker } from 'node:worker_threads';
import { attachPublisher, type EventPublisher } from '@kvmp/tracing';
import * as Comlink from 'comlink';
import type {
  CopyFailure,
  CopyResult,
  GpuWorker,
  GpuWorkerInfo,
  GpuWorkerOptions,
  KvLayoutInfo,
  KvLayoutSpec,
  KvMemory,
  RetrievePlan,
  StorePlan,
} from '../api.js';
import type { CopyDirection } from '../layout/copy-plan.js';
import { planIdentity } from '../layout/plan-identity.js';
import type { CopyCompletion } from '../shared/copy-completion.js';
import { nodeEndpoint } from '../shared/node-endpoint.js';
import { OpReporter, publishCopyEvent } from '../shared/op-reporter.js';
import type { WorkerEndpoint } from '../worker-thread/worker-endpoint.js';

interface Pending {
  readonly direction: CopyDirection;
  readonly plan: StorePlan | RetrievePlan;
  readonly resolve: (result: CopyResult) => void;
}

/**
 * Starts the GPU worker thread and returns its typed API. Rejects if the backend cannot start
 * (cuda without a driver: "no CUDA driver found"); the thread is gone by then.
 */
export async function spawnGpuWorker(options: GpuWorkerOptions): Promise<GpuWorker> {
  const worker = new Worker(new URL('../worker-thread/main.js', import.meta.url), { name: 'kvmp-gpu-worker' });
  const remote = Comlink.wrap<WorkerEndpoint>(nodeEndpoint(worker));
  const exited = new Promise<never>((_, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`gpu worker thread exited (code ${code}) during start`)));
  });
  try {
    const { backend, device, deviceLabel } = options;
    await Promise.race([remote.init({ backend, device, deviceLabel }), exited]);
  } catch (error) {
    remote[Comlink.releaseProxy]();
    await worker.terminate();
    throw error instanceof Error ? new Error(error.message) : new Error(String(error));
  }
  exited.catch(() => {});
  return new GpuWorkerClient(worker, remote, options);
}

/**
 * The caller-thread side. Besides forwarding calls it keeps the contract that every store and
 * retrieve resolves and publishes END, even when the worker thread is closed or has died: the
 * caller published SUBMITTED, so someone must close the span.
 */
class GpuWorkerClient implements GpuWorker {
  readonly backend: 'cpu' | 'cuda';
  private readonly pending = new Set<Pending>();
  private readonly publisher: EventPublisher | undefined;
  private readonly deviceLabel: string;
  private gone: string | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly remote: Comlink.Remote<WorkerEndpoint>,
    options: GpuWorkerOptions,
  ) {
    this.backend = options.backend;
    this.publisher = options.ring === undefined ? undefined : attachPublisher(options.ring);
    this.deviceLabel = options.deviceLabel ?? (options.backend === 'cpu' ? 'cpu' : `cuda:${options.device ?? 0}`);
    worker.on('error', (error) => this.markGone(`gpu worker thread failed: ${error.message}`));
    worker.on('exit', (code) => this.markGone(`gpu worker thread exited (code ${code})`));
  }

  async registerHostMemory(segments: readonly SharedArrayBuffer[]): Promise<number> {
    this.assertUsable();
    return this.remote.registerHostMemory(segments);
  }

  async registerKvCache(instanceId: string, layout: KvLayoutSpec, memory: KvMemory): Promise<KvLayoutInfo> {
    this.assertUsable();
    return this.remote.registerKvCache(instanceId, layout, memory);
  }

  async unregisterKvCache(instanceId: string): Promise<void> {
    this.assertUsable();
    await this.remote.unregisterKvCache(instanceId);
  }

  store(plan: StorePlan): Promise<CopyResult> {
    return this.call('store', plan);
  }

  retrieve(plan: RetrievePlan): Promise<CopyResult> {
    return this.call('retrieve', plan);
  }

  async info(): Promise<GpuWorkerInfo> {
    this.assertUsable();
    return this.remote.info();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.gone === undefined) {
        try {
          await this.remote.close();
        } finally {
          // Before terminate, so the exit it causes is not reported as a crash.
          this.markGone('gpu worker closed');
          this.remote[Comlink.releaseProxy]();
          await this.worker.terminate();
        }
      }
    })();
    return this.closing;
  }

  private call(direction: CopyDirection, plan: StorePlan | RetrievePlan): Promise<CopyResult> {
    if (this.gone !== undefined || this.closing !== undefined) {
      return new Promise((resolve) =>
        this.failHere(direction, plan, 'worker_gone', this.gone ?? 'gpu worker closed', resolve),
      );
    }
    return new Promise((resolve) => {
      const entry: Pending = { direction, plan, resolve };
      this.pending.add(entry);
      let sent: Promise<CopyCompletion>;
      try {
        sent = direction === 'store' ? this.remote.store(plan) : this.remote.retrieve(plan);
      } catch (error) {
        // e.g. DataCloneError: the plan holds something that cannot cross threads.
        this.pending.delete(entry);
        return this.failHere(
          direction,
          plan,
          'invalid_plan',
          `invalid ${direction} plan: ${(error as Error).message}`,
          resolve,
        );
      }
      sent.then(
        ({ result, events }) => {
          if (!this.pending.delete(entry)) return;
          // The worker reported; this thread publishes (OpReporter says why), before resolving,
          // so anything the caller publishes next is ordered after the operation's END.
          const identity = planIdentity(plan);
          for (const event of events) publishCopyEvent(this.publisher, identity, event);
          resolve(result);
        },
        (error: unknown) => {
          if (this.pending.delete(entry)) {
            this.failHere(
              direction,
              plan,
              'invalid_plan',
              `invalid ${direction} plan: ${(error as Error)?.message ?? String(error)}`,
              resolve,
            );
          }
        },
      );
    });
  }

  /** Resolves and publishes START/END from this thread, for operations the worker cannot report. */
  private failHere(
    direction: CopyDirection,
    plan: StorePlan | RetrievePlan,
    failure: CopyFailure,
    error: string,
    resolve: (result: CopyResult) => void,
  ): void {
    const identity = planIdentity(plan);
    new OpReporter(
      (event) => publishCopyEvent(this.publisher, identity, event),
      direction,
      identity,
      this.deviceLabel,
      resolve,
      () => {},
    ).fail(failure, error);
  }

  private markGone(reason: string): void {
    this.gone ??= reason;
    for (const entry of this.pending) this.failHere(entry.direction, entry.plan, 'worker_gone', reason, entry.resolve);
    this.pending.clear();
  }

  private assertUsable(): void {
    if (this.gone !== undefined || this.closing !== undefined) throw new Error(this.gone ?? 'gpu worker closed');
  }
}
