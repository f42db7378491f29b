import type { KvLayoutInfo, KvMemory } from '../api.js';
import type { ResolvedCopy } from '../layout/copy-plan.js';
import type { OpReporter } from '../shared/op-reporter.js';

/**
 * What the GPU worker service needs from a backend. Everything runs on the GPU worker thread.
 * `submit` must call `reporter.finish` exactly once, on every path.
 */
export interface Backend {
  readonly kind: 'cpu' | 'cuda';
  /** Human-readable device description (name, capability, driver). */
  readonly device: string;
  /** Limits the plan validator applies for this backend. */
  readonly maxBlocksPerChunk: number | undefined;
  /** Appends host segments; throws (registering none) if any is unusable. */
  addHostSegments(segments: readonly SharedArrayBuffer[]): void;
  /** Byte length of each registered host segment, by index. */
  hostSegmentBytes(): readonly number[];
  /** Validates the memory against the layout and registers it; throws KvValidationError. */
  registerInstance(instanceId: string, layout: KvLayoutInfo, memory: KvMemory): void;
  /** Cancels queued work, waits for in-flight work to stop, releases the instance. */
  unregisterInstance(instanceId: string): Promise<void>;
  /** Backend-specific plan checks (e.g. the kind of waitEvent); throws KvValidationError. */
  checkCopy(copy: ResolvedCopy): void;
  /** Enqueues on the instance's stream and returns at once. */
  submit(instanceId: string, copy: ResolvedCopy, reporter: OpReporter): void;
  /** Cancels everything queued and releases every resource. */
  close(): Promise<void>;
}
