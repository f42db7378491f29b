import { KvmpServerError } from '../errors.js';

/** Where one chunk lives: index of a registered host segment and a byte offset in it. */
export interface SlotRef {
  readonly segment: number;
  readonly offset: number;
}

export interface MemoryPoolOptions {
  /** Total L1 bytes. */
  readonly capacityBytes: number;
  /** Bytes per SharedArrayBuffer segment (≤ capacity). Every slot must fit in one segment. */
  readonly segmentBytes: number;
}

/** Slot sizes are rounded up to this (cache-line and DMA friendly). */
export const SLOT_ALIGN = 256;

export function slotBytesFor(chunkBytes: number): number {
  return Math.ceil(chunkBytes / SLOT_ALIGN) * SLOT_ALIGN;
}

/**
 * L1 host memory: fixed SharedArrayBuffer segments, registered once with the GPU worker (which
 * pins them on cuda). A slab allocator: a segment is carved into equal slots of one size class
 * the first time a class needs it, and returns to the shared free list when its last slot is
 * freed. All chunks of one layout have the same size, so in the common case (one model) there is
 * exactly one class and no fragmentation; several models share the pool segment by segment.
 *
 * SharedArrayBuffers are zero-filled lazily by the OS, so allocating the whole pool up front
 * costs address space, not resident memory.
 */
export class MemoryPool {
  readonly segments: readonly SharedArrayBuffer[];
  readonly segmentBytes: number;
  readonly capacityBytes: number;
  private readonly segClass: number[];
  private readonly segFree: number[][];
  private readonly segUsed: number[];
  /** Slot size → segments of that class that have a free slot. */
  private readonly open = new Map<number, Set<number>>();
  private readonly empty: number[];
  private used = 0;

  constructor(options: MemoryPoolOptions) {
    const { capacityBytes, segmentBytes } = options;
    if (!(capacityBytes > 0) || !(segmentBytes > 0)) {
      throw new KvmpServerError('INVALID_ARGUMENT', 'l1 capacity and segment size must be positive');
    }
    const segBytes = Math.min(segmentBytes, capacityBytes);
    const count = Math.max(1, Math.floor(capacityBytes / segBytes));
    this.segmentBytes = segBytes;
    this.capacityBytes = count * segBytes;
    this.segments = Array.from({ length: count }, () => new SharedArrayBuffer(segBytes));
    this.segClass = new Array(count).fill(0);
    this.segFree = Array.from({ length: count }, () => []);
    this.segUsed = new Array(count).fill(0);
    this.empty = Array.from({ length: count }, (_, i) => count - 1 - i);
  }

  get usedBytes(): number {
    return this.used;
  }

  /** Can a slot of this size ever be allocated? */
  fits(slotBytes: number): boolean {
    return slotBytes > 0 && slotBytes <= this.segmentBytes;
  }

  /** A free slot, or `undefined` when none is left for this size (the caller evicts and retries). */
  allocate(slotBytes: number): SlotRef | undefined {
    let segs = this.open.get(slotBytes);
    let seg: number | undefined;
    if (segs !== undefined && segs.size > 0) {
      seg = segs.values().next().value as number;
    } else {
      seg = this.empty.pop();
      if (seg === undefined) return undefined;
      this.segClass[seg] = slotBytes;
      const slots = Math.floor(this.segmentBytes / slotBytes);
      const free = this.segFree[seg];
      free.length = 0;
      for (let i = slots - 1; i >= 0; i--) free.push(i * slotBytes);
      if (segs === undefined) {
        segs = new Set();
        this.open.set(slotBytes, segs);
      }
      segs.add(seg);
    }
    const free = this.segFree[seg];
    const offset = free.pop() as number;
    this.segUsed[seg]++;
    if (free.length === 0) segs?.delete(seg);
    this.used += slotBytes;
    return { segment: seg, offset };
  }

  free(ref: SlotRef, slotBytes: number): void {
    const seg = ref.segment;
    if (this.segClass[seg] !== slotBytes) throw new Error('memory pool: slot size mismatch on free');
    this.segFree[seg].push(ref.offset);
    this.segUsed[seg]--;
    this.used -= slotBytes;
    if (this.segUsed[seg] === 0) {
      this.open.get(slotBytes)?.delete(seg);
      this.segClass[seg] = 0;
      this.segFree[seg].length = 0;
      this.empty.push(seg);
    } else {
      let segs = this.open.get(slotBytes);
      if (segs === undefined) {
        segs = new Set();
        this.open.set(slotBytes, segs);
      }
      segs.add(seg);
    }
  }

  /** A byte view of a slot (tests and debugging). */
  view(ref: SlotRef, length: number): Uint8Array {
    return new Uint8Array(this.segments[ref.segment], ref.offset, length);
  }
}
