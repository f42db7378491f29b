interface Entry<K, V> {
  readonly key: K;
  readonly value: V;
}

/**
 * A map of at most `capacity` entries that forgets the oldest insertion first, in O(1).
 *
 * A plain Map can find its oldest entry with `keys().next()`, but V8 answers that by walking
 * every deleted entry at the front of its table: at 65,536 entries with one eviction per
 * insertion that walk measured 10–30 µs. Here insertion order lives in a ring beside the map;
 * a ring slot whose key was deleted or set again since is stale, and is skipped when reached.
 * Stale slots count towards the capacity, so at most `capacity` entries are live.
 */
export class BoundedFifoMap<K, V> {
  private readonly byKey = new Map<K, Entry<K, V>>();
  private readonly order: (Entry<K, V> | undefined)[];
  private oldest = 0;
  private length = 0;

  constructor(capacity: number) {
    this.order = new Array(Math.max(1, capacity)).fill(undefined);
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: K): V | undefined {
    return this.byKey.get(key)?.value;
  }

  has(key: K): boolean {
    return this.byKey.has(key);
  }

  delete(key: K): void {
    this.byKey.delete(key);
  }

  /** Sets `key` as the newest entry (setting a key again renews it); forgets the oldest when full. */
  set(key: K, value: V): void {
    if (this.length === this.order.length) this.forgetOldest();
    const entry: Entry<K, V> = { key, value };
    this.byKey.set(key, entry);
    this.order[(this.oldest + this.length) % this.order.length] = entry;
    this.length++;
  }

  /** Forgets entries, oldest first, while `expired` holds for them. */
  forgetOldestWhile(expired: (value: V) => boolean): void {
    while (this.length > 0) {
      const entry = this.order[this.oldest];
      const live = entry !== undefined && this.byKey.get(entry.key) === entry;
      if (live && !expired(entry.value)) return;
      this.forgetOldest();
    }
  }

  clear(): void {
    this.byKey.clear();
    this.order.fill(undefined);
    this.oldest = 0;
    this.length = 0;
  }

  private forgetOldest(): void {
    const entry = this.order[this.oldest];
    if (entry !== undefined && this.byKey.get(entry.key) === entry) this.byKey.delete(entry.key);
    this.order[this.oldest] = undefined;
    this.oldest = (this.oldest + 1) % this.order.length;
    this.length--;
  }
}
