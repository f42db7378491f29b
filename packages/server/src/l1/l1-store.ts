import { DISABLED_PUBLISHER, type EventMeta, type EventPublisher, type EventTypeName } from '@kvmp/tracing';
import { KvmpServerError } from '../errors.js';
import type { ObjectKey } from '../keys/object-key.js';
import { MemoryPool, type SlotRef } from './memory-pool.js';

export interface L1Options {
  readonly capacityBytes: number;
  /** Default: min(capacity, 64 MiB). */
  readonly segmentBytes?: number;
  /** Read-lock TTL (ms). Default 300 s, as in the anchor. */
  readonly readTtlMs?: number;
  /** Write-lock TTL (ms). Default 600 s, as in the anchor. */
  readonly writeTtlMs?: number;
  /** Eviction starts when an allocation would push usage above this fraction. Default 0.8. */
  readonly evictionWatermark?: number;
  /** An eviction round frees this fraction of capacity below the watermark. Default 0.2. */
  readonly evictionRatio?: number;
  /** Monotonic milliseconds; injectable for tests. */
  readonly now?: () => number;
}

/** A read lock is counted: 1 + the MLA extra readers, capped like the anchor. */
export const MAX_READ_LOCK_COUNT = 128;

/**
 * One chunk of one rank's KV in L1. States: `write_locked` (reserved by a store; not readable
 * until its copy completes) → `ready`; a ready object with a live read lock (`readers > 0`
 * before `readDeadline`) is read-locked. `pins` counts in-flight copies owned by the server
 * (a store writing the slot, a retrieve reading it): they are not client locks, carry no TTL,
 * and keep the slot allocated even if the object is dropped meanwhile.
 */
export interface L1Object {
  readonly key: ObjectKey;
  readonly ref: SlotRef;
  readonly slotBytes: number;
  /** Bytes of KV actually in the slot (≤ slotBytes). */
  readonly chunkBytes: number;
  state: 'write_locked' | 'ready';
  readers: number;
  readDeadline: number;
  /** Bumped whenever the read lock expires or is reset: stale releases are ignored. */
  epoch: number;
  writeDeadline: number;
  pins: number;
  /** Freed as soon as its read count reaches 0 (L2 prefetch buffers). */
  temporary: boolean;
  /** Model of the instance that stored it (event metadata only). */
  readonly modelName: string | undefined;
  /** No longer in the index; the slot is freed when the last pin drops. */
  removed: boolean;
}

/** A read lock held by someone (a session's lookup): the object and the epoch it was taken in. */
export interface ReadLease {
  readonly obj: L1Object;
  readonly epoch: number;
}

export type WriteOutcome = 'reserved' | 'present' | 'oom';

export interface WriteReservation {
  readonly outcomes: readonly WriteOutcome[];
  /** The reserved objects, in key order (only `reserved` keys). */
  readonly objects: readonly L1Object[];
  /** Index of each reserved object in the key list. */
  readonly indices: readonly number[];
}

export interface L1Stats {
  readonly capacityBytes: number;
  readonly usedBytes: number;
  readonly objects: number;
  readonly writeLocked: number;
  readonly readLocked: number;
  readonly pinned: number;
  readonly evictedKeys: number;
  readonly evictedBytes: number;
  readonly allocationFailures: number;
  readonly allocationFailedKeys: number;
  readonly readLocksExpired: number;
  readonly writeLocksExpired: number;
}

/**
 * L1 metadata and memory. Single owner: only the server thread touches it, so no locks are
 * needed (the anchor serialises the same state machine behind one global lock).
 */
export class L1Store {
  readonly pool: MemoryPool;
  readonly readTtlMs: number;
  readonly writeTtlMs: number;
  readonly watermark: number;
  readonly ratio: number;
  private readonly now: () => number;
  /** Insertion order is LRU order: the first entry is the least recently used. */
  private readonly index = new Map<ObjectKey, L1Object>();
  private evictedKeys = 0;
  private evictedBytes = 0;
  private allocationFailures = 0;
  private allocationFailedKeys = 0;
  private readLocksExpired = 0;
  private writeLocksExpired = 0;

  constructor(
    options: L1Options,
    private readonly publisher: EventPublisher = DISABLED_PUBLISHER,
  ) {
    const watermark = options.evictionWatermark ?? 0.8;
    const ratio = options.evictionRatio ?? 0.2;
    if (!(watermark > 0 && watermark <= 1))
      throw new KvmpServerError('INVALID_ARGUMENT', 'evictionWatermark must be in (0, 1]');
    if (!(ratio >= 0 && ratio <= watermark))
      throw new KvmpServerError('INVALID_ARGUMENT', 'evictionRatio must be in [0, watermark]');
    this.pool = new MemoryPool({
      capacityBytes: options.capacityBytes,
      segmentBytes: options.segmentBytes ?? Math.min(options.capacityBytes, 64 * 1024 * 1024),
    });
    this.readTtlMs = options.readTtlMs ?? 300_000;
    this.writeTtlMs = options.writeTtlMs ?? 600_000;
    this.watermark = watermark;
    this.ratio = ratio;
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.index.size;
  }

  has(key: ObjectKey): boolean {
    return this.index.has(key);
  }

  /** The object under `key`, if any (any state). */
  get(key: ObjectKey): L1Object | undefined {
    return this.index.get(key);
  }

  // --- writes -----------------------------------------------------------------------------

  /**
   * Reserves slots for the keys not already present (dedup). Reserved objects are write-locked
   * and pinned by the caller's copy. Stops allocating at the first key that cannot get memory
   * even after eviction: a chunk after a gap is unreachable by a prefix lookup, so storing it
   * would only waste memory. Publishes `L1_WRITE_RESERVED` and, on OOM, `L1_ALLOCATION_FAILED`.
   */
  reserveWrite(
    keys: readonly ObjectKey[],
    slotBytes: number,
    chunkBytes: number,
    sessionId: string,
    options: { temporary?: boolean; modelName?: string } = {},
  ): WriteReservation {
    const outcomes: WriteOutcome[] = new Array(keys.length);
    const objects: L1Object[] = [];
    const indices: number[] = [];
    // Keep present keys from being evicted by our own allocations while we reserve.
    const held: L1Object[] = [];
    let missing = 0;
    for (const key of keys) {
      const obj = this.index.get(key);
      if (obj === undefined) missing++;
      else {
        obj.pins++;
        held.push(obj);
      }
    }
    if (missing > 0) this.makeHeadroom(missing * slotBytes, sessionId);
    const now = this.now();
    let oom = false;
    let oomKeys = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (this.index.has(key)) {
        outcomes[i] = 'present';
        continue;
      }
      if (oom) {
        outcomes[i] = 'oom';
        oomKeys++;
        continue;
      }
      const ref = this.allocateEvicting(slotBytes, sessionId);
      if (ref === undefined) {
        oom = true;
        outcomes[i] = 'oom';
        oomKeys++;
        continue;
      }
      const obj: L1Object = {
        key,
        ref,
        slotBytes,
        chunkBytes,
        state: 'write_locked',
        readers: 0,
        readDeadline: 0,
        epoch: 0,
        writeDeadline: now + this.writeTtlMs,
        pins: 1,
        temporary: options.temporary === true,
        removed: false,
        modelName: options.modelName,
      };
      this.index.set(key, obj);
      objects.push(obj);
      indices.push(i);
      outcomes[i] = 'reserved';
    }
    for (const obj of held) this.unpinQuiet(obj);
    if (objects.length > 0) {
      this.emit('L1_WRITE_RESERVED', sessionId, {
        key_count: objects.length,
        total_bytes: objects.length * chunkBytes,
        ...(options.modelName === undefined ? {} : { model_name: options.modelName }),
      });
    }
    if (oomKeys > 0) {
      this.allocationFailures++;
      this.allocationFailedKeys += oomKeys;
      this.emit('L1_ALLOCATION_FAILED', sessionId, {
        during: 'l1_store',
        key_count: oomKeys,
        requested_bytes: oomKeys * slotBytes,
      });
    }
    return { outcomes, objects, indices };
  }

  /**
   * The copy into the reserved objects finished. On success they become readable (and most
   * recently used); on failure they are dropped and their memory freed. `readCount > 0` turns
   * them atomically into read-locked objects (used for prefetch buffers).
   */
  finishWrite(objects: readonly L1Object[], ok: boolean, sessionId: string, readCount = 0): void {
    let bytes = 0;
    let count = 0;
    const now = this.now();
    for (const obj of objects) {
      obj.pins--;
      if (obj.removed) {
        if (obj.pins === 0) this.pool.free(obj.ref, obj.slotBytes);
        continue;
      }
      if (!ok) {
        this.drop(obj);
        continue;
      }
      obj.state = 'ready';
      if (readCount > 0) {
        obj.readers = Math.min(MAX_READ_LOCK_COUNT, readCount);
        obj.readDeadline = now + this.readTtlMs;
      }
      this.index.delete(obj.key);
      this.index.set(obj.key, obj);
      bytes += obj.chunkBytes;
      count++;
    }
    if (count > 0) {
      const modelName = objects[0].modelName;
      this.emit('L1_WRITE_FINISHED', sessionId, {
        key_count: count,
        total_bytes: bytes,
        ...(modelName === undefined ? {} : { model_name: modelName }),
      });
    }
  }

  // --- reads ------------------------------------------------------------------------------

  /**
   * Read-locks each key that is ready (`count` readers: 1 + MLA extra readers), refreshing the
   * TTL and the LRU recency. Returns a lease per key, `undefined` for misses (absent or still
   * being written). Publishes `L1_READ_RESERVED`.
   */
  reserveRead(keys: readonly ObjectKey[], count: number, sessionId: string): (ReadLease | undefined)[] {
    const now = this.now();
    const out: (ReadLease | undefined)[] = new Array(keys.length);
    let locked = 0;
    for (let i = 0; i < keys.length; i++) {
      const obj = this.index.get(keys[i]);
      if (obj === undefined || obj.state !== 'ready') {
        out[i] = undefined;
        continue;
      }
      this.expireReadIfDue(obj, now);
      obj.readers = Math.min(MAX_READ_LOCK_COUNT, obj.readers + count);
      obj.readDeadline = now + this.readTtlMs;
      this.index.delete(obj.key);
      this.index.set(obj.key, obj);
      out[i] = { obj, epoch: obj.epoch };
      locked++;
    }
    if (locked > 0) this.emit('L1_READ_RESERVED', sessionId, { key_count: locked });
    return out;
  }

  /** Is this lease's lock still held (not expired, not dropped)? */
  leaseLive(lease: ReadLease): boolean {
    const obj = lease.obj;
    if (obj.removed || obj.epoch !== lease.epoch || obj.readers <= 0) return false;
    if (obj.readDeadline <= this.now()) {
      this.expireRead(obj);
      return false;
    }
    return true;
  }

  /** Releases `count` readers of each lease; stale leases are ignored. Publishes `L1_READ_FINISHED`. */
  releaseRead(leases: readonly { lease: ReadLease; count: number }[], sessionId: string): void {
    let released = 0;
    for (const { lease, count } of leases) {
      const obj = lease.obj;
      if (obj.removed || obj.epoch !== lease.epoch || obj.readers <= 0) continue;
      obj.readers = Math.max(0, obj.readers - count);
      released++;
      if (obj.readers === 0) this.maybeDropTemporary(obj);
    }
    if (released > 0) this.emit('L1_READ_FINISHED', sessionId, { key_count: released });
  }

  /**
   * For a retrieve: all-or-nothing, turns one reader of each lease into a pin held for the
   * copy. Returns false (and changes nothing) if any lease is no longer live.
   */
  pinForCopy(leases: readonly ReadLease[]): boolean {
    for (const lease of leases) if (!this.leaseLive(lease)) return false;
    for (const { obj } of leases) {
      obj.readers--;
      obj.pins++;
    }
    return true;
  }

  /** The retrieve copy finished: drops the pins. Publishes `L1_READ_FINISHED`. */
  unpinAfterRead(objects: readonly L1Object[], sessionId: string): void {
    for (const obj of objects) this.unpinQuiet(obj);
    if (objects.length > 0) this.emit('L1_READ_FINISHED', sessionId, { key_count: objects.length });
  }

  /** Moves present keys to the most-recently-used end (end_session's touch). */
  touch(keys: Iterable<ObjectKey>): number {
    let n = 0;
    for (const key of keys) {
      const obj = this.index.get(key);
      if (obj === undefined) continue;
      this.index.delete(key);
      this.index.set(key, obj);
      n++;
    }
    return n;
  }

  // --- eviction and expiry ----------------------------------------------------------------

  /** Ready, unpinned, and without a live read lock. */
  evictable(obj: L1Object, now = this.now()): boolean {
    if (obj.state !== 'ready' || obj.pins > 0 || obj.removed) return false;
    if (obj.readers > 0 && obj.readDeadline > now) return false;
    return true;
  }

  /**
   * Allocation-triggered eviction: if `bytes` more would push usage over the watermark, evict
   * LRU objects until usage + bytes is `ratio` below it (or nothing evictable is left).
   */
  private makeHeadroom(bytes: number, sessionId: string): void {
    const cap = this.pool.capacityBytes;
    if (this.pool.usedBytes + bytes <= this.watermark * cap) return;
    const target = Math.max(0, (this.watermark - this.ratio) * cap - bytes);
    this.evictUntil(() => this.pool.usedBytes <= target, sessionId);
  }

  private allocateEvicting(slotBytes: number, sessionId: string): SlotRef | undefined {
    const ref = this.pool.allocate(slotBytes);
    if (ref !== undefined) return ref;
    let got: SlotRef | undefined;
    this.evictUntil(() => {
      got = this.pool.allocate(slotBytes);
      return got !== undefined;
    }, sessionId);
    return got;
  }

  /** Evicts LRU-first until `done()` or no candidate is left. Publishes one `L1_KEYS_EVICTED`. */
  private evictUntil(done: () => boolean, sessionId: string): void {
    const now = this.now();
    let keys = 0;
    let bytes = 0;
    for (const obj of this.index.values()) {
      if (done()) break;
      if (!this.evictable(obj, now)) continue;
      this.drop(obj);
      keys++;
      bytes += obj.chunkBytes;
    }
    if (keys > 0) {
      this.evictedKeys += keys;
      this.evictedBytes += bytes;
      this.emit('L1_KEYS_EVICTED', sessionId, { key_count: keys, total_bytes: bytes });
    }
  }

  /**
   * Expires read and write locks past their TTL and, if usage is above the watermark (memory
   * that expired locks no longer protect, say), evicts back under it. Called periodically;
   * allocations do not wait for it (they evict on their own).
   */
  sweep(): void {
    const now = this.now();
    for (const obj of this.index.values()) {
      if (obj.state === 'write_locked') {
        if (obj.writeDeadline <= now) {
          this.writeLocksExpired++;
          this.drop(obj);
        }
      } else if (obj.readers > 0 && obj.readDeadline <= now) {
        this.expireRead(obj);
      }
    }
    this.makeHeadroom(0, '');
    if (this.publisher.isSubscribed('L1_USAGE')) {
      this.publisher.publish('L1_USAGE', '', {
        used_bytes: this.pool.usedBytes,
        capacity_bytes: this.pool.capacityBytes,
        object_count: this.index.size,
      });
    }
  }

  /** Drops every evictable object; locked, pinned and in-flight ones stay. */
  clear(sessionId = ''): { cleared: number; kept: number } {
    const now = this.now();
    let cleared = 0;
    let bytes = 0;
    for (const obj of this.index.values()) {
      if (!this.evictable(obj, now)) continue;
      this.drop(obj);
      cleared++;
      bytes += obj.chunkBytes;
    }
    if (cleared > 0) this.emit('L1_KEYS_EVICTED', sessionId, { key_count: cleared, total_bytes: bytes });
    return { cleared, kept: this.index.size };
  }

  stats(): L1Stats {
    const now = this.now();
    let writeLocked = 0;
    let readLocked = 0;
    let pinned = 0;
    for (const obj of this.index.values()) {
      if (obj.state === 'write_locked') writeLocked++;
      else if (obj.readers > 0 && obj.readDeadline > now) readLocked++;
      if (obj.pins > 0) pinned++;
    }
    return {
      capacityBytes: this.pool.capacityBytes,
      usedBytes: this.pool.usedBytes,
      objects: this.index.size,
      writeLocked,
      readLocked,
      pinned,
      evictedKeys: this.evictedKeys,
      evictedBytes: this.evictedBytes,
      allocationFailures: this.allocationFailures,
      allocationFailedKeys: this.allocationFailedKeys,
      readLocksExpired: this.readLocksExpired,
      writeLocksExpired: this.writeLocksExpired,
    };
  }

  // --- internals --------------------------------------------------------------------------

  /**
   * L1 events are published only when a drain-thread subscriber wants them (one shared load):
   * they are the most frequent events and most deployments do not consume them.
   */
  private emit<T extends EventTypeName>(type: T, sessionId: string, meta: EventMeta<T>): void {
    if (this.publisher.isSubscribed(type)) this.publisher.publish(type, sessionId, meta);
  }

  private expireReadIfDue(obj: L1Object, now: number): void {
    if (obj.readers > 0 && obj.readDeadline <= now) this.expireRead(obj);
  }

  private expireRead(obj: L1Object): void {
    obj.readers = 0;
    obj.epoch++;
    this.readLocksExpired++;
    this.maybeDropTemporary(obj);
  }

  private maybeDropTemporary(obj: L1Object): void {
    if (obj.temporary && obj.readers === 0 && obj.pins === 0 && obj.state === 'ready') this.drop(obj);
  }

  private unpinQuiet(obj: L1Object): void {
    obj.pins--;
    if (obj.removed) {
      if (obj.pins === 0) this.pool.free(obj.ref, obj.slotBytes);
    } else {
      this.maybeDropTemporary(obj);
    }
  }

  /** Removes from the index; frees the slot now, or when the last pin drops. */
  private drop(obj: L1Object): void {
    if (obj.removed) return;
    obj.removed = true;
    obj.epoch++;
    this.index.delete(obj.key);
    if (obj.pins === 0) this.pool.free(obj.ref, obj.slotBytes);
  }
}
