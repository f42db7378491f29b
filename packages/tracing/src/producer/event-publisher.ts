import { nowInto } from '../events/clock.js';
import type { EventMeta, PublishOptions, TraceCarrier } from '../events/event.js';
import type { EventTypeRef } from '../events/event-types.js';
import { Off } from '../ring/record-format.js';
import { Ctrl, mapRing, type RingHandle, type RingViews, SLOT_BYTES } from '../ring/ring-layout.js';
import { CODEC_BY_NAME } from '../ring/type-codec.js';
import { RecordEncoder } from './record-encoder.js';

/**
 * Publishes events into the ring from any thread. Never blocks: when the ring is full the
 * event is dropped and counted. Obtain one per thread with {@link attachPublisher}.
 *
 * Ordering: tickets are reserved with a CAS on the shared head, so if `publish(A)` returns
 * before `publish(B)` starts — on any threads — A's ticket is lower and A is dispatched first.
 */
export interface EventPublisher {
  /**
   * Returns false when the event was dropped because the ring was full. While publishing is
   * paused it returns true and publishes nothing: a paused event is not a drop.
   */
  publish<T extends EventTypeRef>(type: T, sessionId: string, meta: EventMeta<T>, options?: PublishOptions): boolean;
  /** Cheap check (one shared load): does any drain-thread subscriber want this type? */
  isSubscribed(type: EventTypeRef): boolean;
  /** A new operation id, unique across threads (u32, wraps after 2³² operations). */
  nextOpId(): number;
  readonly enabled: boolean;
}

class RingPublisher implements EventPublisher {
  readonly enabled = true;
  private readonly ring: RingViews;
  private readonly encoder = new RecordEncoder();
  /** Views of the scratch buffer that skip the commit word, one per record slot count. */
  private readonly copyViews: Uint8Array[];
  private readonly time: number[] = [0, 0];
  private readonly producerId: number;
  /** Where this publisher expects the head to be: the end of its previous reservation. */
  private headGuess: number;
  /** The tail as last read (a lower bound on the real one). */
  private tailSeen: number;

  constructor(handle: RingHandle) {
    this.ring = mapRing(handle);
    this.producerId = Atomics.add(this.ring.ctrl, Ctrl.PRODUCER_ID, 1) & 0xffff;
    this.headGuess = Atomics.load(this.ring.ctrl, Ctrl.HEAD);
    this.tailSeen = Atomics.load(this.ring.ctrl, Ctrl.TAIL);
    const scratch = this.encoder.bytes;
    this.copyViews = [];
    for (let slots = 0; slots * SLOT_BYTES <= scratch.length; slots++) {
      this.copyViews.push(scratch.subarray(4, Math.max(4, slots * SLOT_BYTES)));
    }
  }

  publish<T extends EventTypeRef>(type: T, sessionId: string, meta: EventMeta<T>, options?: PublishOptions): boolean {
    const codec = CODEC_BY_NAME[type];
    if (codec === undefined) throw new TypeError(`unknown event type ${String(type)}`);
    if (Atomics.load(this.ring.ctrl, Ctrl.PAUSED) !== 0) return true;
    let sec: number;
    let nsec: number;
    const explicit = options?.time;
    if (explicit !== undefined) {
      sec = explicit[0];
      nsec = explicit[1];
    } else {
      nowInto(this.time);
      sec = this.time[0];
      nsec = this.time[1];
    }
    const length = this.encoder.encode(
      codec,
      sessionId,
      meta as object,
      options?.opId ?? 0,
      options?.workerId,
      validCarrier(options?.trace),
      sec,
      nsec,
      this.producerId,
    );
    const slots = ((length + SLOT_BYTES - 1) / SLOT_BYTES) | 0;
    this.encoder.bytes[Off.SLOTS] = slots & 0xff;
    this.encoder.bytes[Off.SLOTS + 1] = slots >>> 8;

    const { ctrl, capacity, mask, data } = this.ring;
    // Reserve `slots` consecutive tickets with a CAS on the shared head. First guess: the head
    // right after this publisher's previous reservation, with the tail it saw then. While no
    // other thread published in between, the guess is right and neither contended line is read;
    // otherwise the CAS returns the real head and the tail is re-read. A stale tail only errs
    // towards dropping (it only grows), never towards overwriting unread records.
    let head = this.headGuess;
    let tail = this.tailSeen;
    let fresh = false;
    for (;;) {
      const used = (head - tail) | 0;
      if (used < 0 || used + slots > capacity) {
        // The guess says full (or is from before the consumer passed it): decide on fresh
        // values. The tail is read before the head, so fresh values never give used < 0.
        if (!fresh) {
          tail = Atomics.load(ctrl, Ctrl.TAIL);
          head = Atomics.load(ctrl, Ctrl.HEAD);
          fresh = true;
          continue;
        }
        this.headGuess = head;
        this.tailSeen = tail;
        Atomics.add(ctrl, Ctrl.DROPPED, 1);
        return false;
      }
      const seen = Atomics.compareExchange(ctrl, Ctrl.HEAD, head, (head + slots) | 0);
      if (seen === head) break;
      head = seen;
      if (!fresh) {
        tail = Atomics.load(ctrl, Ctrl.TAIL);
        fresh = true;
      }
    }
    this.headGuess = (head + slots) | 0;
    this.tailSeen = tail;
    const at = (head & mask) * SLOT_BYTES;
    data.set(this.copyViews[slots], at + 4);
    // Commit: the drain thread reads the record only after this store (seq-cst publication).
    Atomics.store(this.ring.commit, at >>> 2, (head + 1) | 0);
    if (((head + slots - tail) | 0) > capacity >>> 1) this.nudgeIfNapping();
    if (Atomics.load(ctrl, Ctrl.SLEEPING) !== 0 && Atomics.compareExchange(ctrl, Ctrl.SLEEPING, 1, 0) === 1) {
      this.ringDoorbell();
    }
    return true;
  }

  /**
   * The ring looks more than half full: if the drain is napping, wake it now rather than at
   * the end of its nap. The tail this publisher saw may be stale, so it is re-read first; one
   * producer wins the NAPPING flag and rings.
   */
  private nudgeIfNapping(): void {
    const { ctrl, capacity } = this.ring;
    if (Atomics.load(ctrl, Ctrl.NAPPING) === 0) return;
    this.tailSeen = Atomics.load(ctrl, Ctrl.TAIL);
    if (((this.headGuess - this.tailSeen) | 0) <= capacity >>> 1) return;
    if (Atomics.compareExchange(ctrl, Ctrl.NAPPING, 1, 0) === 1) this.ringDoorbell();
  }

  private ringDoorbell(): void {
    const { ctrl } = this.ring;
    Atomics.add(ctrl, Ctrl.DOORBELL, 1);
    Atomics.notify(ctrl, Ctrl.DOORBELL, 1);
  }

  isSubscribed(type: EventTypeRef): boolean {
    const code = CODEC_BY_NAME[type].code;
    const { ctrl } = this.ring;
    return (
      (Atomics.load(ctrl, Ctrl.SUBSCRIBED + (code >>> 5)) & (1 << (code & 31))) !== 0 &&
      Atomics.load(ctrl, Ctrl.PAUSED) === 0
    );
  }

  nextOpId(): number {
    return (Atomics.add(this.ring.ctrl, Ctrl.OP_ID, 1) + 1) >>> 0;
  }
}

/** A publisher for when observability is off: every call is a cheap no-op. */
export const DISABLED_PUBLISHER: EventPublisher = {
  enabled: false,
  publish: () => false,
  isSubscribed: () => false,
  nextOpId: () => 0,
};

const publishers = new WeakMap<SharedArrayBuffer, EventPublisher>();

/** The calling thread's publisher for a ring (one per thread and ring, created on first use). */
export function attachPublisher(handle: RingHandle): EventPublisher {
  let p = publishers.get(handle.sab);
  if (p === undefined) {
    p = new RingPublisher(handle);
    publishers.set(handle.sab, p);
  }
  return p;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const TRACESTATE = /^[\x20-\x7e]*$/;

/** Only well-formed W3C headers travel; anything else is dropped (never fatal). */
export function validCarrier(trace: TraceCarrier | undefined): TraceCarrier | undefined {
  if (trace === undefined) return undefined;
  const { traceparent, tracestate } = trace;
  if (typeof traceparent !== 'string' || traceparent.length > 512 || !TRACEPARENT.test(traceparent)) return undefined;
  if (traceparent.startsWith('ff') || /^0+$/.test(traceparent.slice(3, 35)) || /^0+$/.test(traceparent.slice(36, 52))) {
    return undefined;
  }
  if (tracestate === undefined) return trace;
  if (typeof tracestate !== 'string' || tracestate.length > 512 || !TRACESTATE.test(tracestate)) {
    return { traceparent };
  }
  return trace;
}
