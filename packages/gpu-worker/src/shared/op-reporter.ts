import { type EpochTime, type EventMeta, type EventPublisher, now } from '@kvmp/tracing';
import type { CopyFailure, CopyResult } from '../api.js';
import type { CopyDirection, ResolvedCopy } from '../layout/copy-plan.js';
import type { PlanIdentity } from '../layout/plan-identity.js';
import type { OpOutcome } from './op-outcome.js';

type GpuOrderedEvent = 'MP_STORE_START' | 'MP_RETRIEVE_START' | 'MP_STORE_END' | 'MP_RETRIEVE_END';

function toNs(t: EpochTime): number {
  return t[0] * 1e9 + t[1];
}

/**
 * Publishes one operation's START and END and resolves its result, exactly once each, on every
 * path. START is published when the stream reaches it if the backend knows then (cpu), or at the
 * end with the GPU-measured time (cuda); either way START precedes END in the ring.
 */
export class OpReporter {
  private startPublished = false;
  private finished = false;
  private copy: ResolvedCopy | undefined;

  constructor(
    private readonly publisher: EventPublisher | undefined,
    readonly direction: CopyDirection,
    readonly identity: PlanIdentity,
    private readonly device: string,
    private readonly resolve: (result: CopyResult) => void,
    private readonly onFinished: () => void,
  ) {}

  /** The validated plan; until attached, a finish reports 0 bytes (validation failures). */
  attach(copy: ResolvedCopy): void {
    this.copy = copy;
  }

  get done(): boolean {
    return this.finished;
  }

  /** The stream reached the start of the copy (after any wait on the engine's event). */
  started(time: EpochTime): void {
    if (this.startPublished || this.finished) return;
    this.startPublished = true;
    const { identity: id } = this;
    this.emit(this.direction === 'store' ? 'MP_STORE_START' : 'MP_RETRIEVE_START', time, {
      device: this.device,
      engine_id: id.engineId,
      model_name: id.modelName,
    });
  }

  finish(outcome: OpOutcome): void {
    if (this.finished) return;
    this.started(outcome.start);
    this.finished = true;
    const { identity: id, copy } = this;
    const ok = outcome.ok && copy !== undefined;
    const bytes = ok ? copy.bytes : 0;
    const tokens = ok ? copy.movedTokens : 0;
    const count = ok ? copy.numChunks : 0;
    const common = {
      device: this.device,
      engine_id: id.engineId,
      model_name: id.modelName,
      total_bytes: bytes,
      num_tokens: tokens,
      success: ok,
      ...(ok ? {} : { error: outcome.error ?? 'unknown error' }),
    };
    if (this.direction === 'store') this.emit('MP_STORE_END', outcome.end, { ...common, stored_count: count });
    else this.emit('MP_RETRIEVE_END', outcome.end, { ...common, retrieved_count: count });
    const result: CopyResult = {
      opId: id.opId,
      ok,
      bytes,
      tokens,
      startNs: toNs(outcome.start),
      endNs: toNs(outcome.end),
      ...(ok ? {} : { error: outcome.error ?? 'unknown error', failure: outcome.failure ?? 'copy_failed' }),
      ...(outcome.doneEvent !== undefined ? { doneEvent: outcome.doneEvent } : {}),
    };
    this.onFinished();
    this.resolve(result);
  }

  /** Finishes a failure that never reached a stream: START and END both at "now". */
  fail(failure: CopyFailure, error: string): void {
    const t = now();
    this.finish({ ok: false, failure, error, start: t, end: t });
  }

  private emit<T extends GpuOrderedEvent>(type: T, time: EpochTime, meta: EventMeta<T>): void {
    if (this.publisher === undefined) return;
    const { identity: id } = this;
    try {
      this.publisher.publish(type, id.sessionId, meta, { opId: id.opId, workerId: id.workerId, time });
    } catch (error) {
      // Observability must never fail a copy (e.g. an over-long session id the codec rejects).
      console.warn(`gpu-worker: could not publish ${type}: ${(error as Error).message}`);
    }
  }
}
