import type { KvmpEvent } from '../events/event.js';
import { Off } from '../ring/record-format.js';
import {
  Ctrl,
  MAX_SLOTS_PER_RECORD,
  mapRing,
  type RingHandle,
  type RingViews,
  SLOT_BYTES,
  Stat,
} from '../ring/ring-layout.js';
import { RecordDecoder } from './record-decoder.js';

export type PollOutcome = 'empty' | 'pending' | 'budget';

/** How often (in records) the consumer publishes its tail so producers see free space. */
const TAIL_PUBLISH_EVERY = 64;
/** How often (in records) the consumer reads the clock to end a pass at its slice. */
const SLICE_CHECK_EVERY = 8;
/** Loads spent on a reserved-but-uncommitted record before yielding to the event loop. */
const SPIN_LOADS = 256;

/**
 * The single consumer of the ring. Lives on the drain thread; reads records in ticket order.
 */
export class RingConsumer {
  readonly ring: RingViews;
  private readonly decoder: RecordDecoder;
  private next: number;
  private pendingSince = 0;
  private droppedSeen: number;
  /** 1 for event codes some subscriber wants (all by default). */
  private wanted: Uint8Array = new Uint8Array(256).fill(1);

  constructor(
    handle: RingHandle,
    /** A reserved record not committed after this long is presumed abandoned (its thread died). */
    private readonly abandonAfterMs = 5_000,
  ) {
    this.ring = mapRing(handle);
    this.decoder = new RecordDecoder(this.ring);
    this.next = Atomics.load(this.ring.ctrl, Ctrl.TAIL);
    this.droppedSeen = this.ring.stats[Stat.DROPPED_SEEN_RAW];
  }

  /** Decode and deliver only records whose code is set in `wanted` (index = event code). */
  setWanted(wanted: Uint8Array): void {
    this.wanted = wanted;
  }

  /** Ticket of the next record to read. */
  get position(): number {
    return this.next;
  }

  /**
   * Delivers up to `budget` records to `sink`, in ticket order, and stops early (outcome
   * `budget`) once `performance.now()` passes `sliceEndMs` (read every 8 records).
   */
  poll(budget: number, sink: (event: KvmpEvent) => void, sliceEndMs = Number.POSITIVE_INFINITY): PollOutcome {
    const { ctrl, commit, mask } = this.ring;
    let t = this.next;
    let since = 0;
    let outcome: PollOutcome = 'budget';
    for (let n = 0; n < budget; n++) {
      const at = (t & mask) * SLOT_BYTES;
      const want = (t + 1) | 0;
      // The commit word alone says whether the record at t is ready (it is lap-tagged), so the
      // head — whose cache line producers hammer — is read only when the record is not ready.
      if (Atomics.load(commit, at >>> 2) !== want) {
        if (Atomics.load(ctrl, Ctrl.HEAD) === t) {
          outcome = 'empty';
          break;
        }
        let spins = 0;
        while (Atomics.load(commit, at >>> 2) !== want && ++spins < SPIN_LOADS) {}
        if (spins === SPIN_LOADS) {
          const skipTo = this.abandoned(t);
          if (skipTo === undefined) {
            outcome = 'pending';
            break;
          }
          t = skipTo;
          continue;
        }
      }
      if (this.pendingSince !== 0) this.pendingSince = 0;
      const slots = this.ring.dataView.getUint16(at + Off.SLOTS, true);
      // Records nobody subscribed to are consumed without being decoded.
      const event = this.wanted[this.ring.data[at + Off.CODE]] === 1 ? this.decoder.decode(at, t) : undefined;
      // Free the slots before dispatch: the record was copied out, and the subscriber may be slow.
      t = (t + (slots > 0 ? slots : 1)) | 0;
      if (++since === TAIL_PUBLISH_EVERY) {
        Atomics.store(ctrl, Ctrl.TAIL, t);
        since = 0;
      }
      this.next = t;
      if (event !== undefined) sink(event);
      if ((n & (SLICE_CHECK_EVERY - 1)) === SLICE_CHECK_EVERY - 1 && performance.now() > sliceEndMs) break;
    }
    this.next = t;
    Atomics.store(ctrl, Ctrl.TAIL, t);
    return outcome;
  }

  /** Events dropped by producers since the last call. */
  takeDropped(): number {
    const now = Atomics.load(this.ring.ctrl, Ctrl.DROPPED);
    const delta = (now - this.droppedSeen) >>> 0;
    this.droppedSeen = now;
    this.ring.stats[Stat.DROPPED_SEEN_RAW] = now;
    return delta;
  }

  /** Age of the oldest undelivered committed record in ns, 0 when none. */
  lagNs(nowNs: number): number {
    const t = this.next;
    const { ctrl, commit, mask } = this.ring;
    if (t === Atomics.load(ctrl, Ctrl.HEAD)) return 0;
    const at = (t & mask) * SLOT_BYTES;
    if (Atomics.load(commit, at >>> 2) !== ((t + 1) | 0)) return 0;
    return Math.max(0, nowNs - this.decoder.timeNs(at));
  }

  /** Tickets reserved but not yet consumed. */
  depth(): number {
    return (Atomics.load(this.ring.ctrl, Ctrl.HEAD) - this.next) | 0;
  }

  /**
   * A producer thread that dies between reserving and committing leaves a hole that would stall
   * the ring forever. After `abandonAfterMs`, skip to the next committed record (a committed
   * record's commit word equals its own ticket + 1, which stale slots never do).
   */
  private abandoned(t: number): number | undefined {
    const nowMs = Date.now();
    if (this.pendingSince === 0) {
      this.pendingSince = nowMs;
      return undefined;
    }
    if (nowMs - this.pendingSince < this.abandonAfterMs) return undefined;
    const { ctrl, commit, mask } = this.ring;
    const head = Atomics.load(ctrl, Ctrl.HEAD);
    for (let j = 1; j <= MAX_SLOTS_PER_RECORD; j++) {
      const u = (t + j) | 0;
      if (((head - u) | 0) <= 0) break;
      if (Atomics.load(commit, ((u & mask) * SLOT_BYTES) >>> 2) === ((u + 1) | 0)) {
        this.pendingSince = 0;
        this.ring.stats[Stat.ABANDONED] += 1;
        return u;
      }
    }
    return undefined;
  }
}
