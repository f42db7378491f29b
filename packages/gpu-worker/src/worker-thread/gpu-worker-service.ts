import type {
  GpuWorkerInfo,
  GpuWorkerOptions,
  KvLayoutInfo,
  KvLayoutSpec,
  KvMemory,
  RetrievePlan,
  StorePlan,
} from '../api.js';
import { type CopyDirection, type ResolvedCopy, resolveCopyPlan } from '../layout/copy-plan.js';
import { describeKvLayout } from '../layout/kv-layout.js';
import { checkPlanIdentity, planIdentity } from '../layout/plan-identity.js';
import { KvValidationError } from '../layout/validation-error.js';
import type { CopyCompletion } from '../shared/copy-completion.js';
import { type CopyEvent, OpReporter } from '../shared/op-reporter.js';
import type { Backend } from './backend.js';
import { KeepAlive } from './keep-alive.js';

/**
 * The GPU worker thread's state and operations, backend-independent: registrations, plan
 * validation (before anything is enqueued), START/END reporting and keeping the thread alive
 * while work is pending. Exposed to other threads over comlink by `main.ts`. It publishes
 * nothing itself: each operation's START and END go back with its result, and the client
 * publishes them (see `OpReporter`).
 */
export class GpuWorkerService {
  private readonly layouts = new Map<string, KvLayoutInfo>();
  private readonly keepAlive = new KeepAlive();
  private readonly device: string;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly backend: Backend,
    options: Pick<GpuWorkerOptions, 'deviceLabel'>,
  ) {
    this.device = options.deviceLabel ?? backend.kind;
  }

  registerHostMemory(segments: readonly SharedArrayBuffer[]): number {
    this.assertOpen();
    if (!Array.isArray(segments)) throw new KvValidationError('segments', 'must be an array of SharedArrayBuffer');
    const first = this.backend.hostSegmentBytes().length;
    this.backend.addHostSegments(segments);
    return first;
  }

  async registerKvCache(instanceId: string, spec: KvLayoutSpec, memory: KvMemory): Promise<KvLayoutInfo> {
    this.assertOpen();
    if (typeof instanceId !== 'string' || instanceId === '')
      throw new KvValidationError('instanceId', 'must be a non-empty string');
    const layout = describeKvLayout(spec);
    // Re-registration replaces (as LMCache does for a restarted worker reusing its id).
    if (this.layouts.has(instanceId)) await this.unregisterKvCache(instanceId);
    this.backend.registerInstance(instanceId, layout, memory);
    this.layouts.set(instanceId, layout);
    return layout;
  }

  async unregisterKvCache(instanceId: string): Promise<void> {
    if (!this.layouts.delete(instanceId)) return;
    await this.backend.unregisterInstance(instanceId);
  }

  store(plan: StorePlan): Promise<CopyCompletion> {
    return this.submit('store', plan);
  }

  retrieve(plan: RetrievePlan): Promise<CopyCompletion> {
    return this.submit('retrieve', plan);
  }

  info(): GpuWorkerInfo {
    return {
      backend: this.backend.kind,
      device: this.backend.device,
      hostSegments: this.backend.hostSegmentBytes().length,
      instances: [...this.layouts.keys()],
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.layouts.clear();
      await this.backend.close();
    })();
    return this.closing;
  }

  private submit(direction: CopyDirection, plan: StorePlan | RetrievePlan): Promise<CopyCompletion> {
    const identity = planIdentity(plan);
    return new Promise<CopyCompletion>((resolve) => {
      this.keepAlive.acquire();
      const events: CopyEvent[] = [];
      const reporter = new OpReporter(
        (event) => events.push(event),
        direction,
        identity,
        this.device,
        (result) => resolve({ result, events }),
        () => this.keepAlive.release(),
      );
      if (this.closing !== undefined) return reporter.fail('worker_gone', 'gpu worker closed');
      const layout = this.layouts.get(identity.instanceId);
      let copy: ResolvedCopy;
      try {
        checkPlanIdentity(plan);
        if (layout === undefined)
          return reporter.fail('unknown_instance', `instance ${identity.instanceId} is not registered`);
        copy = resolveCopyPlan(direction, plan, layout, this.backend.hostSegmentBytes(), {
          maxBlocksPerChunk: this.backend.maxBlocksPerChunk,
        });
        this.backend.checkCopy(copy);
      } catch (error) {
        const failure = error instanceof KvValidationError ? 'invalid_plan' : 'copy_failed';
        return reporter.fail(failure, `invalid ${direction} plan: ${(error as Error).message}`);
      }
      reporter.attach(copy);
      try {
        this.backend.submit(identity.instanceId, copy, reporter);
      } catch (error) {
        reporter.fail('copy_failed', `${direction} could not be enqueued: ${(error as Error).message}`);
      }
    });
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new Error('gpu worker closed');
  }
}
