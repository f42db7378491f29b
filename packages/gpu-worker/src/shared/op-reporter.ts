import { type EpochTime, type EventMeta, type EventPublisher, now } from '@kvmp/tracing';
import type { CopyFailure, CopyResult } from '../api.js';
import type { CopyDirection, ResolvedCopy } from '../layout/copy-plan.js';
import type { PlanIdentity } from '../layout/plan-identity.js';
import type { OpOutcome } from './op-outcome.js';

/** An operation's START or END, as its reporter produced it, for the ring. */
export type CopyEvent =
  | { readonly type: 'MP_STORE_START'; readonly time: EpochTime; readonly meta: EventMeta<'MP_STORE_START'> }
  | { readonly type: 'MP_RETRIEVE_START'; readonly time: EpochTime; readonly meta: EventMeta<'MP_RETRIEVE_START'> }
  | { readonly type: 'MP_STORE_END'; readonly time: EpochTime; readonly meta: EventMeta<'MP_STORE_END'> }
  | { readonly type: 'MP_RETRIEVE_END'; readonly time: EpochTime; readonly meta: EventMeta<'MP_RETRIEVE_END'> };

/** Where a reporter's events go: straight to the ring, or into the completion message. */
export type CopyEventSink = (event: CopyEvent) => void;

/** Publishes one reported event with its operation's identity and the time the stream measured. */
export function publishCopyEvent(publisher: EventPublisher | undefined, id: PlanIdentity, event: CopyEvent): void {
  if (publisher === undefined) return;
  try {
    publisher.publish(event.type, id.sessionId, event.meta, { opId: id.opId, workerId: id.workerId, time: event.time });
  } catch (error) {
    // Observability must never fail a copy (e.g. an over-long session id the codec rejects).
    console.warn(`gpu-worker: could not publish ${event.type}: ${(error as Error).message}`);
  }
}

function toNs(t: EpochTime): number {
  return t[0] * 1e9 + t[1];
}

/**
 * Reports one operation's START and END and resolves its result, exactly once each, on every
 * path. Both are reported when the operation finishes, START right before END, each with the
 * time the stream measured: the events carry explicit times, so reporting late moves no span,
 * and cuda learns its START time only at the end anyway.
 *
 * The GPU worker's reporter does not publish: its events travel back in the completion message
 * and the client publishes them on the thread that receives it (see `gpu-worker-client.ts`).
 * The GPU worker's thread is the one that bounds throughput on the cpu backend, and after
 * copying megabytes every publish there started cold: ~5 µs per event, 20 µs of its CPU per
 * request in `bench:server`.
 */
export class OpReporter {
  private startedAt: EpochTime | undefined;
  private finished = false;
  private copy: ResolvedCopy | undefined;

  constructor(
    private readonly sink: CopyEventSink | undefined,
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
    if (!this.finished) this.startedAt ??= time;
  }

  finish(outcome: OpOutcome): void {
    if (this.finished) return;
    this.finished = true;
    const { identity: id, copy, device } = this;
    const start = this.startedAt ?? outcome.start;
    const named = { device, engine_id: id.engineId, model_name: id.modelName };
    if (this.direction === 'store') this.sink?.({ type: 'MP_STORE_START', time: start, meta: named });
    else this.sink?.({ type: 'MP_RETRIEVE_START', time: start, meta: named });
    const ok = outcome.ok && copy !== undefined;
    const bytes = ok ? copy.bytes : 0;
    const tokens = ok ? copy.movedTokens : 0;
    const count = ok ? copy.numChunks : 0;
    const common = {
      ...named,
      total_bytes: bytes,
      num_tokens: tokens,
      success: ok,
      ...(ok ? {} : { error: outcome.error ?? 'unknown error' }),
    };
    if (this.direction === 'store') {
      this.sink?.({ type: 'MP_STORE_END', time: outcome.end, meta: { ...common, stored_count: count } });
    } else {
      this.sink?.({ type: 'MP_RETRIEVE_END', time: outcome.end, meta: { ...common, retrieved_count: count } });
    }
    const result: CopyResult = {
      opId: id.opId,
      ok,
      bytes,
      tokens,
      startNs: toNs(start),
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
}
