/**
 * Layout of the event ring: one SharedArrayBuffer that every thread maps.
 *
 * ```
 * [ control words: 256 × i32, each hot word on its own 64-byte line ]   1 KiB
 * [ stats: 16 × f64, written by the drain thread only ]                 128 B (padded to 1 KiB)
 * [ data: capacity × 64-byte slots ][ overflow: MAX_RECORD_BYTES ]
 * ```
 * A record occupies one or more consecutive tickets (slots). A record that would run past the
 * last slot continues into the overflow area instead of wrapping, so every record is contiguous.
 * See docs/design/event-ring.md for the protocol.
 */

export const SLOT_BYTES = 64;
/** Largest encoded record (header + session id + metadata + trace carrier). */
export const MAX_RECORD_BYTES = 4096;
export const MAX_SLOTS_PER_RECORD = MAX_RECORD_BYTES / SLOT_BYTES;

/** Indexes into the control Int32Array. Hot words are 16 ints (64 bytes) apart. */
export const Ctrl = {
  /** Next ticket to reserve (u32, wraps). Written by producers (CAS). */
  HEAD: 0,
  /** Next ticket to consume (u32, wraps). Written by the drain thread. */
  TAIL: 16,
  /** 1 while the drain thread is (about to be) asleep. */
  SLEEPING: 32,
  /** Futex word the drain thread waits on. */
  DOORBELL: 48,
  /** Events dropped because the ring was full (u32, wraps). */
  DROPPED: 64,
  /** Operation id counter (u32, wraps). */
  OP_ID: 80,
  /** Publisher id counter. */
  PRODUCER_ID: 81,
  /** Capacity in slots (power of two), written once at creation. */
  CAPACITY: 82,
  /** Layout version, written once at creation. */
  VERSION: 83,
  /** 1 while a drain thread is attached and running. */
  DRAIN_RUNNING: 84,
  /** 1 while the drain naps between passes (producers nudge it if the ring passes half full). */
  NAPPING: 85,
  /**
   * 1 while publishing is paused (`EventPipeline.pausePublishing`): producers return at once and
   * report no subscriber, so the ring, the drain thread and its subscribers see nothing.
   */
  PAUSED: 86,
  /** Subscription bitmask: 8 × 32 bits, one bit per event code. Read by producers. */
  SUBSCRIBED: 96,
} as const;

export const CONTROL_INTS = 256;
export const CONTROL_BYTES = CONTROL_INTS * 4;

/** Indexes into the stats Float64Array (drain thread writes, anyone reads). */
export const Stat = {
  DELIVERED: 0,
  SUBSCRIBER_ERRORS: 1,
  /** Age in ns of the oldest undelivered event at the last sample; 0 when empty. */
  LAG_NS: 2,
  /** Dropped events seen by the drain thread, as a float that does not wrap. */
  DROPPED_TOTAL: 3,
  /** Records skipped because their producer never committed them (died mid-publish). */
  ABANDONED: 4,
  /** Epoch ns of the last drain pass (liveness). */
  LAST_PASS_NS: 5,
  /** Raw value of the wrapping DROPPED word when last read, so a restarted drain resumes counting. */
  DROPPED_SEEN_RAW: 6,
} as const;

export const STATS_OFFSET = CONTROL_BYTES;
export const STATS_COUNT = 16;
export const DATA_OFFSET = 2048;
export const LAYOUT_VERSION = 1;

export const DEFAULT_CAPACITY = 65_536;

/** Serializable handle to a ring: pass it to any thread (workerData, postMessage). */
export interface RingHandle {
  readonly sab: SharedArrayBuffer;
}

/** Typed views over a ring's buffer, created once per thread. */
export interface RingViews {
  readonly ctrl: Int32Array;
  readonly stats: Float64Array;
  readonly data: Uint8Array;
  readonly dataView: DataView;
  /** Int32 view of the data region, for the commit word at the start of each record. */
  readonly commit: Int32Array;
  readonly capacity: number;
  readonly mask: number;
}

export function createRing(capacity: number = DEFAULT_CAPACITY): RingHandle {
  if (!Number.isInteger(capacity) || capacity < MAX_SLOTS_PER_RECORD * 2 || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`ring capacity must be a power of two ≥ ${MAX_SLOTS_PER_RECORD * 2} slots, got ${capacity}`);
  }
  const sab = new SharedArrayBuffer(DATA_OFFSET + capacity * SLOT_BYTES + MAX_RECORD_BYTES);
  const ctrl = new Int32Array(sab, 0, CONTROL_INTS);
  ctrl[Ctrl.CAPACITY] = capacity;
  ctrl[Ctrl.VERSION] = LAYOUT_VERSION;
  return { sab };
}

export function mapRing(handle: RingHandle): RingViews {
  const { sab } = handle;
  if (!(sab instanceof SharedArrayBuffer)) throw new TypeError('ring handle: sab must be a SharedArrayBuffer');
  const ctrl = new Int32Array(sab, 0, CONTROL_INTS);
  if (ctrl[Ctrl.VERSION] !== LAYOUT_VERSION) {
    throw new Error(`ring layout version ${ctrl[Ctrl.VERSION]} is not ${LAYOUT_VERSION}`);
  }
  const capacity = ctrl[Ctrl.CAPACITY];
  return {
    ctrl,
    stats: new Float64Array(sab, STATS_OFFSET, STATS_COUNT),
    data: new Uint8Array(sab, DATA_OFFSET),
    dataView: new DataView(sab, DATA_OFFSET),
    commit: new Int32Array(sab, DATA_OFFSET),
    capacity,
    mask: capacity - 1,
  };
}

/** Number of tickets reserved but not yet consumed. */
export function occupancy(ctrl: Int32Array): number {
  return (Atomics.load(ctrl, Ctrl.HEAD) - Atomics.load(ctrl, Ctrl.TAIL)) | 0;
}
