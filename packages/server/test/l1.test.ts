import test from 'ava';
import { L1Store, MemoryPool } from '../src/index.js';

const SLOT = 1024;

function store(
  opts: { slots?: number; readTtlMs?: number; writeTtlMs?: number; watermark?: number; ratio?: number } = {},
) {
  let clock = 0;
  const l1 = new L1Store({
    capacityBytes: (opts.slots ?? 10) * SLOT,
    segmentBytes: 2 * SLOT,
    readTtlMs: opts.readTtlMs ?? 1000,
    writeTtlMs: opts.writeTtlMs ?? 2000,
    evictionWatermark: opts.watermark ?? 1,
    evictionRatio: opts.ratio ?? 0,
    now: () => clock,
  });
  return { l1, advance: (ms: number) => (clock += ms) };
}

function put(l1: L1Store, keys: string[]): void {
  const r = l1.reserveWrite(keys, SLOT, SLOT, 's');
  l1.finishWrite(r.objects, true, 's');
}

test('memory pool: slab classes share segments and free them back', (t) => {
  const pool = new MemoryPool({ capacityBytes: 4096, segmentBytes: 2048 });
  t.is(pool.segments.length, 2);
  const a = pool.allocate(1024);
  const b = pool.allocate(1024);
  const c = pool.allocate(512);
  t.truthy(a && b && c);
  t.not(a?.segment, c?.segment, 'a different class takes its own segment');
  t.is(pool.allocate(2048), undefined, 'no empty segment left');
  pool.free(a!, 1024);
  pool.free(b!, 1024);
  t.truthy(pool.allocate(2048), 'an emptied segment returns to the free list');
  t.is(pool.usedBytes, 512 + 2048);
});

test('state machine: write-locked objects are not readable until the copy completes', (t) => {
  const { l1 } = store();
  const r = l1.reserveWrite(['a', 'b'], SLOT, SLOT, 's');
  t.deepEqual(r.outcomes, ['reserved', 'reserved']);
  t.deepEqual(
    l1.reserveRead(['a'], 1, 's').map((x) => x === undefined),
    [true],
  );
  l1.finishWrite(r.objects, true, 's');
  const [lease] = l1.reserveRead(['a'], 1, 's');
  t.truthy(lease);
  t.is(l1.get('a')?.readers, 1);
  l1.releaseRead([{ lease: lease!, count: 1 }], 's');
  t.is(l1.get('a')?.readers, 0);
});

test('failed copy: reserved objects are dropped and their memory freed', (t) => {
  const { l1 } = store();
  const r = l1.reserveWrite(['a'], SLOT, SLOT, 's');
  t.is(l1.pool.usedBytes, SLOT);
  l1.finishWrite(r.objects, false, 's');
  t.false(l1.has('a'));
  t.is(l1.pool.usedBytes, 0);
});

test('dedup: present keys are not reserved again', (t) => {
  const { l1 } = store();
  put(l1, ['a']);
  const r = l1.reserveWrite(['a', 'b'], SLOT, SLOT, 's');
  t.deepEqual(r.outcomes, ['present', 'reserved']);
  t.deepEqual(r.indices, [1]);
});

test('LRU eviction never takes locked, pinned or write-locked objects', (t) => {
  const { l1 } = store({ slots: 4 });
  put(l1, ['a', 'b', 'c']);
  const [la] = l1.reserveRead(['a'], 1, 's'); // read-locked
  const w = l1.reserveWrite(['d'], SLOT, SLOT, 's'); // write-locked, pinned
  t.is(l1.pool.usedBytes, 4 * SLOT);
  // Two more: b and c (unlocked, LRU order) go; a and d stay.
  const r = l1.reserveWrite(['e', 'f'], SLOT, SLOT, 's');
  t.deepEqual(r.outcomes, ['reserved', 'reserved']);
  t.true(l1.has('a'));
  t.true(l1.has('d'));
  t.false(l1.has('b'));
  t.false(l1.has('c'));
  // Nothing evictable left: OOM, reported.
  const r2 = l1.reserveWrite(['g'], SLOT, SLOT, 's');
  t.deepEqual(r2.outcomes, ['oom']);
  t.like(l1.stats(), { allocationFailures: 1, allocationFailedKeys: 1, evictedKeys: 2 });
  t.truthy(la);
  t.truthy(w);
});

test('OOM stops at the first chunk that does not fit (no gaps in a prefix)', (t) => {
  const { l1 } = store({ slots: 2 });
  const r = l1.reserveWrite(['a', 'b', 'c', 'd'], SLOT, SLOT, 's');
  t.deepEqual(r.outcomes, ['reserved', 'reserved', 'oom', 'oom']);
});

test('watermark: an allocation over it evicts down to watermark − ratio', (t) => {
  const { l1 } = store({ slots: 10, watermark: 0.8, ratio: 0.2 });
  put(l1, ['0', '1', '2', '3', '4', '5', '6', '7']);
  t.is(l1.pool.usedBytes, 8 * SLOT);
  // 8 + 1 > 8: evict until used + 1 ≤ 6 → 3 evicted (the 3 least recently used).
  put(l1, ['x']);
  t.is(l1.stats().evictedKeys, 3);
  t.false(l1.has('0'));
  t.false(l1.has('2'));
  t.true(l1.has('3'));
  t.is(l1.pool.usedBytes, 6 * SLOT);
});

test('touch moves keys to the MRU end', (t) => {
  const { l1 } = store({ slots: 3 });
  put(l1, ['a', 'b', 'c']);
  l1.touch(['a']);
  put(l1, ['d']);
  t.true(l1.has('a'));
  t.false(l1.has('b'));
});

test('read-lock TTL: an expired lock no longer pins memory, and its late release is ignored', (t) => {
  const { l1, advance } = store({ slots: 2, readTtlMs: 100 });
  put(l1, ['a', 'b']);
  const [lease] = l1.reserveRead(['a'], 2, 's');
  advance(50);
  t.true(l1.leaseLive(lease!));
  advance(60);
  t.false(l1.leaseLive(lease!));
  const [lease2] = l1.reserveRead(['a'], 1, 'other');
  l1.releaseRead([{ lease: lease!, count: 2 }], 's');
  t.is(l1.get('a')?.readers, 1, 'the stale release did not steal the new reader');
  t.truthy(lease2);
  advance(200);
  l1.sweep();
  t.like(l1.stats(), { readLocked: 0 });
  put(l1, ['c', 'd']);
  t.false(l1.has('a'));
});

test('write-lock TTL: a hung copy is dropped from the index; its slot is freed only when the copy settles', (t) => {
  const { l1, advance } = store({ slots: 2, writeTtlMs: 100 });
  const r = l1.reserveWrite(['a'], SLOT, SLOT, 's');
  advance(150);
  l1.sweep();
  t.false(l1.has('a'));
  t.is(l1.pool.usedBytes, SLOT, 'the in-flight copy still owns the slot');
  l1.finishWrite(r.objects, true, 's');
  t.false(l1.has('a'), 'a late completion does not resurrect it');
  t.is(l1.pool.usedBytes, 0);
  t.is(l1.stats().writeLocksExpired, 1);
});

test('temporary objects are freed when their read count reaches 0', (t) => {
  const { l1 } = store();
  const r = l1.reserveWrite(['tmp'], SLOT, SLOT, 's', { temporary: true });
  l1.finishWrite(r.objects, true, 's', 2);
  const obj = l1.get('tmp')!;
  t.is(obj.readers, 2);
  l1.releaseRead([{ lease: { obj, epoch: obj.epoch }, count: 1 }], 's');
  t.true(l1.has('tmp'));
  l1.releaseRead([{ lease: { obj, epoch: obj.epoch }, count: 1 }], 's');
  t.false(l1.has('tmp'));
  t.is(l1.pool.usedBytes, 0);
});

test('pinForCopy is all-or-nothing', (t) => {
  const { l1, advance } = store({ readTtlMs: 100 });
  put(l1, ['a', 'b']);
  const [la] = l1.reserveRead(['a'], 1, 's');
  advance(50);
  const [lb] = l1.reserveRead(['b'], 1, 's');
  advance(60); // a expired, b live
  t.false(l1.pinForCopy([la!, lb!]));
  t.is(l1.get('b')?.pins, 0);
  t.is(l1.get('b')?.readers, 1);
  t.true(l1.pinForCopy([lb!]));
  t.is(l1.get('b')?.pins, 1);
  t.is(l1.clear().kept, 1, 'clear keeps the pinned object');
  l1.unpinAfterRead([lb!.obj], 's');
  t.is(l1.clear().kept, 0);
});

test('the periodic sweep evicts back under the watermark once locks expire', (t) => {
  const { l1, advance } = store({ slots: 10, watermark: 0.5, ratio: 0.1, readTtlMs: 100 });
  const keys = ['0', '1', '2', '3', '4', '5', '6', '7'];
  put(l1, keys); // one reservation: above the watermark, nothing evictable, still fits
  t.is(l1.pool.usedBytes, 8 * SLOT);
  t.true(l1.reserveRead(keys, 1, 's').every((x) => x !== undefined));
  l1.sweep();
  t.is(l1.size, 8, 'locked: nothing to evict');
  advance(150);
  l1.sweep();
  t.is(l1.pool.usedBytes, 4 * SLOT, 'expired locks: evicted down to watermark − ratio');
});
