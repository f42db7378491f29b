import type { KvmpEventOf } from '../events/event.js';

type StartEvent = KvmpEventOf<'MP_STORE_START'> | KvmpEventOf<'MP_RETRIEVE_START'>;

/** How long an unmatched START is remembered before it is dropped (its END never came). */
const FORGET_AFTER_NS = 10 * 60 * 1e9;

/**
 * Pairs GPU-ordered START and END events of one copy operation (same session, op id and
 * worker) to measure its duration on the stream's clock.
 */
export class TransferTimer {
  private readonly open = new Map<string, number>();

  start(event: StartEvent): void {
    this.open.set(key(event.sessionId, event.opId, event.workerId), toNs(event.time));
  }

  /** Duration in seconds, or `undefined` when the START was not seen. */
  end(
    sessionId: string,
    opId: number,
    workerId: number | undefined,
    time: readonly [number, number],
  ): number | undefined {
    const k = key(sessionId, opId, workerId);
    const startNs = this.open.get(k);
    if (startNs === undefined) return undefined;
    this.open.delete(k);
    return Math.max(0, toNs(time) - startNs) / 1e9;
  }

  /** Forgets STARTs older than the cutoff (their END was lost). */
  sweep(nowNs: number): void {
    for (const [k, startNs] of this.open) if (nowNs - startNs > FORGET_AFTER_NS) this.open.delete(k);
  }

  get size(): number {
    return this.open.size;
  }
}

const key = (sessionId: string, opId: number, workerId: number | undefined): string =>
  `${opId}\u0000${workerId ?? -1}\u0000${sessionId}`;
const toNs = (time: readonly [number, number]): number => time[0] * 1e9 + time[1];
