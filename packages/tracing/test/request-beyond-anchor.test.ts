/**
 * Where kvmp does better than the anchor (research note §3.9): concurrent operations,
 * tensor-parallel workers, failures, leaks and late children, asserted on exported spans.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import test from 'ava';
import { at, ev, harness, ns, parentId, spanId } from './fixtures/request-harness.js';

const MINUTE_NS = 60e9;

test('two concurrent stores in one session are two spans, neither overwritten', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_STORE_SUBMITTED', 's', 1, { opId: 1 }),
    ev('MP_STORE_SUBMITTED', 's', 2, { opId: 2 }),
    ev('MP_STORE_START', 's', 10, { opId: 1 }),
    ev('MP_STORE_START', 's', 11, { opId: 2 }),
  );
  t.is(h.registry.get('s', 'store#1')?.span.spanContext().spanId !== undefined, true);
  t.not(h.registry.get('s', 'store#1')?.span, h.registry.get('s', 'store#2')?.span);
  t.is(h.registry.get('s', 'store')?.span, h.registry.get('s', 'store#2')?.span, 'plain name: the latest open store');
  h.feed(ev('MP_STORE_END', 's', 20, { opId: 2 }), ev('MP_REQUEST_END', 's', 21));
  t.is(h.registry.get('s', 'store')?.span, h.registry.get('s', 'store#1')?.span, 'falls back to the one still open');
  h.feed(ev('MP_STORE_END', 's', 30, { opId: 1 }));
  const stores = h.byName('mp.store').sort((a, b) => Number(ns(a.startTime) - ns(b.startTime)));
  t.is(stores.length, 2);
  t.deepEqual(
    stores.map((s) => [s.attributes.op_id, ns(s.startTime), ns(s.endTime)]),
    [
      [1, ns(at(10)), ns(at(30))],
      [2, ns(at(11)), ns(at(20))],
    ],
  );
  const root = h.one('request');
  for (const s of stores) t.is(parentId(s), spanId(root));
  t.is(ns(root.endTime), ns(at(21)));
});

test('a copy span carries START and END metadata, typed, and never the error text as an attribute', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_RETRIEVE_SUBMITTED', 's', 1, { opId: 7, workerId: 1 }),
    ev('MP_RETRIEVE_START', 's', 2, { opId: 7, workerId: 1, meta: { device: 'cuda:1', engine_id: 'e1' } }),
    ev('MP_RETRIEVE_END', 's', 3, {
      opId: 7,
      workerId: 1,
      meta: { device: 'cuda:1', engine_id: 'e1', retrieved_count: 2, success: false, error: 'lock expired' },
    }),
    ev('MP_REQUEST_END', 's', 4),
  );
  t.deepEqual(h.one('mp.retrieve').attributes, {
    session_id: 's',
    worker_id: 1,
    op_id: 7,
    device: 'cuda:1',
    engine_id: 'e1',
    model_name: 'm',
    retrieved_count: 2,
    total_bytes: 4096,
    num_tokens: 64,
    success: false,
  });
});

test('operations without op ids are matched first-in first-out per worker', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_STORE_START', 's', 10),
    ev('MP_STORE_START', 's', 11),
    ev('MP_STORE_END', 's', 20),
    ev('MP_STORE_END', 's', 21),
    ev('MP_REQUEST_END', 's', 22),
  );
  const stores = h.byName('mp.store').sort((a, b) => Number(ns(a.startTime) - ns(b.startTime)));
  t.deepEqual(
    stores.map((s) => [ns(s.startTime), ns(s.endTime)]),
    [
      [ns(at(10)), ns(at(20))],
      [ns(at(11)), ns(at(21))],
    ],
  );
});

test('TP=2: each worker store/retrieve is its own child with worker_id; the counters cover both', (t) => {
  const h = harness();
  h.feed(ev('MP_REQUEST_START', 's', 0));
  for (const w of [0, 1]) {
    h.feed(ev('MP_RETRIEVE_SUBMITTED', 's', 1, { opId: 5, workerId: w }));
    h.feed(ev('MP_STORE_SUBMITTED', 's', 2, { opId: 6, workerId: w }));
  }
  h.feed(ev('MP_REQUEST_END', 's', 3));
  for (const w of [0, 1]) h.feed(ev('MP_RETRIEVE_START', 's', 10 + w, { opId: 5, workerId: w }));
  h.feed(ev('MP_RETRIEVE_END', 's', 20, { opId: 5, workerId: 1 }));
  h.feed(ev('MP_RETRIEVE_END', 's', 21, { opId: 5, workerId: 0 }));
  for (const w of [0, 1]) h.feed(ev('MP_STORE_START', 's', 30 + w, { opId: 6, workerId: w }));
  h.feed(ev('MP_STORE_END', 's', 40, { opId: 6, workerId: 0 }));
  t.is(h.byName('request').length, 0, "rank 1's store is still in flight");
  h.feed(ev('MP_STORE_END', 's', 41, { opId: 6, workerId: 1 }));
  const root = h.one('request');
  t.is(ns(root.endTime), ns(at(3)));
  for (const name of ['mp.retrieve', 'mp.store']) {
    const spans = h.byName(name);
    t.deepEqual(spans.map((s) => s.attributes.worker_id).sort(), [0, 1]);
    for (const s of spans) t.is(parentId(s), spanId(root));
  }
  t.deepEqual(h.registry.allSessionIds(), []);
});

test('a failed END sets the child to ERROR with its reason; the root closes normally', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_RETRIEVE_SUBMITTED', 's', 1, { opId: 1 }),
    ev('MP_REQUEST_END', 's', 2),
    ev('MP_RETRIEVE_START', 's', 3, { opId: 1 }),
    ev('MP_RETRIEVE_END', 's', 4, { opId: 1, meta: { success: false, error: 'l1 read failed', retrieved_count: 0 } }),
  );
  const retrieve = h.one('mp.retrieve');
  t.is(retrieve.status.code, SpanStatusCode.ERROR);
  t.is(retrieve.status.message, 'l1 read failed');
  t.is(retrieve.attributes.success, false);
  t.is(retrieve.attributes.error, undefined, 'the reason goes to the status, not an attribute');
  const root = h.one('request');
  t.is(root.status.code, SpanStatusCode.UNSET);
  t.is(ns(root.endTime), ns(at(2)));
  t.is(h.tracker.stats().failedChildren, 1);
});

test('a failed END without a reason still gets a status message', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_STORE_START', 's', 1, { opId: 1 }),
    ev('MP_STORE_END', 's', 2, { opId: 1, meta: { success: false } }),
  );
  t.is(h.one('mp.store').status.message, 'store failed');
});

test('SUBMITTED without END (retrieve underflow): the sweep ends the root after the TTL, ERROR + kvmp.leaked', (t) => {
  const h = harness({ ttlMs: 10 * 60_000 });
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_RETRIEVE_SUBMITTED', 's', 1), ev('MP_REQUEST_END', 's', 2));
  h.clockNs += 9 * MINUTE_NS;
  h.tracker.sweep(h.clockNs);
  t.is(h.spans().length, 0, 'not yet idle for the TTL');
  h.clockNs += 1 * MINUTE_NS;
  h.tracker.sweep(h.clockNs);
  const root = h.one('request');
  t.is(root.status.code, SpanStatusCode.ERROR);
  t.is(root.attributes['kvmp.leaked'], true);
  t.is(root.attributes['kvmp.leak_reason'], 'in_flight_end_missing');
  t.is(ns(root.endTime), ns(at(2)), 'still stamped with its logical end');
  t.deepEqual(h.registry.allSessionIds(), []);
  t.is(h.tracker.stats().leakedByReason.in_flight_end_missing, 1);
  t.is(h.tracker.stats().openSessions, 0);
});

test('a session whose REQUEST_END never comes is swept, open children included', (t) => {
  const h = harness({ ttlMs: 1000 });
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_STORE_SUBMITTED', 's', 5), ev('MP_STORE_START', 's', 10, { opId: 1 }));
  h.feed(ev('MP_REQUEST_START', 'busy', 0));
  h.clockNs += 0.5e9;
  h.feed(ev('MP_LOOKUP_PREFETCH_START', 'busy', 1));
  h.clockNs += 0.6e9;
  h.tracker.sweep(h.clockNs);
  const root = h.one('request');
  const store = h.one('mp.store');
  t.is(root.attributes.session_id, 's', 'only the idle session is swept');
  t.is(root.attributes['kvmp.leak_reason'], 'request_end_missing');
  t.is(store.attributes['kvmp.leak_reason'], 'end_missing');
  t.is(store.status.code, SpanStatusCode.ERROR);
  t.is(parentId(store), spanId(root));
  t.is(ns(root.endTime), ns(at(10)), 'ended at the last event seen for the session');
  t.deepEqual(h.registry.allSessionIds(), ['busy']);
});

test('a child starting after its root closed nests under the closed root (kvmp.late), no second root', (t) => {
  const h = harness();
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_REQUEST_END', 's', 5));
  const root = h.one('request');
  h.feed(ev('MP_STORE_START', 's', 10, { opId: 1 }));
  t.is(h.registry.get('s', 'request'), undefined, 'no new root is registered');
  h.feed(ev('MP_STORE_END', 's', 20, { opId: 1 }));
  t.is(h.byName('request').length, 1, 'exactly one root');
  const store = h.one('mp.store');
  t.is(parentId(store), spanId(root));
  t.is(store.spanContext().traceId, root.spanContext().traceId);
  t.is(store.attributes['kvmp.late'], true);
  t.is(store.status.code, SpanStatusCode.UNSET);
  t.is(h.tracker.stats().lateChildren, 1);
  t.is(h.tracker.stats().openSessions, 0);
});

test('a late child that never ends is swept like any other leak', (t) => {
  const h = harness({ ttlMs: 1000 });
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_REQUEST_END', 's', 5), ev('MP_RETRIEVE_START', 's', 10, { opId: 1 }));
  h.clockNs += 2e9;
  h.tracker.sweep(h.clockNs);
  const retrieve = h.one('mp.retrieve');
  t.is(retrieve.attributes['kvmp.leaked'], true);
  t.is(retrieve.attributes['kvmp.late'], true);
  t.is(h.byName('request').length, 1);
});

test('closed roots are forgotten after the TTL: a much later START is a new (lazy) root', (t) => {
  const h = harness({ ttlMs: 1000 });
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_REQUEST_END', 's', 5));
  t.is(h.tracker.stats().closedSessions, 1);
  h.clockNs += 2e9;
  h.tracker.sweep(h.clockNs);
  t.is(h.tracker.stats().closedSessions, 0);
  h.feed(ev('MP_STORE_START', 's', 3_000_000, { opId: 1 }), ev('MP_STORE_END', 's', 3_000_001, { opId: 1 }));
  h.feed(ev('MP_REQUEST_END', 's', 3_000_002));
  t.is(h.byName('request').length, 2);
});

test('the memory of closed roots is bounded', (t) => {
  const h = harness({ maxClosedSessions: 3 });
  for (let i = 0; i < 10; i++) h.feed(ev('MP_REQUEST_START', `s${i}`, i), ev('MP_REQUEST_END', `s${i}`, i + 1));
  t.is(h.tracker.stats().closedSessions, 3);
});

test('a second START with the same op id and worker supersedes the first, which is ended as leaked', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_STORE_START', 's', 1, { opId: 1 }),
    ev('MP_STORE_START', 's', 2, { opId: 1 }),
    ev('MP_STORE_END', 's', 3, { opId: 1 }),
    ev('MP_REQUEST_END', 's', 4),
  );
  const stores = h.byName('mp.store');
  t.is(stores.length, 2);
  t.deepEqual(stores.map((s) => s.attributes['kvmp.leak_reason']).sort(), ['superseded', undefined]);
});

test('a lazy root never ends before it starts when REQUEST_END preceded the GPU START', (t) => {
  const h = harness();
  h.feed(
    ev('MP_STORE_SUBMITTED', 's', 0),
    ev('MP_REQUEST_END', 's', 1),
    ev('MP_STORE_START', 's', 10, { opId: 1 }),
    ev('MP_STORE_END', 's', 20, { opId: 1 }),
  );
  const root = h.one('request');
  t.is(ns(root.startTime), ns(at(10)));
  t.is(ns(root.endTime), ns(at(10)), 'clamped to its start');
  t.is(parentId(h.one('mp.store')), spanId(root));
});

test('an END without START still releases the in-flight count, so the root closes', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_STORE_SUBMITTED', 's', 1),
    ev('MP_REQUEST_END', 's', 2),
    ev('MP_STORE_END', 's', 3, { opId: 1 }),
  );
  t.is(ns(h.one('request').endTime), ns(at(2)));
  t.is(h.tracker.stats().unmatchedEnds, 1);
});

test('shutdown ends every open span as leaked and counts it', (t) => {
  const h = harness();
  h.feed(ev('MP_REQUEST_START', 'a', 0), ev('MP_STORE_SUBMITTED', 'a', 1), ev('MP_REQUEST_END', 'a', 2));
  h.feed(ev('MP_REQUEST_START', 'b', 0), ev('MP_LOOKUP_PREFETCH_START', 'b', 1));
  h.tracker.shutdown();
  t.is(h.spans().length, 3);
  for (const s of h.spans()) {
    t.is(s.status.code, SpanStatusCode.ERROR);
    t.is(s.attributes['kvmp.leak_reason'], 'shutdown');
  }
  t.is(h.tracker.stats().leakedSpans, 3);
  t.deepEqual(h.registry.allSessionIds(), []);
});

test('a second lookup replaces an unfinished one (superseded), and the pair is not mismatched', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_LOOKUP_PREFETCH_START', 's', 1),
    ev('MP_REQUEST_START', 's', 2),
    ev('MP_LOOKUP_PREFETCH_START', 's', 3),
    ev('MP_LOOKUP_PREFETCH_END', 's', 4, { meta: { hit_tokens: 8, requested_tokens: 16 } }),
    ev('MP_REQUEST_END', 's', 5),
  );
  t.is(h.byName('request').length, 1, 'a duplicate REQUEST_START does not open a second root');
  const lookups = h.byName('mp.lookup_prefetch').sort((a, b) => Number(ns(a.startTime) - ns(b.startTime)));
  t.is(lookups[0].attributes['kvmp.leak_reason'], 'superseded');
  t.is(ns(lookups[1].startTime), ns(at(3)));
  t.is(ns(lookups[1].endTime), ns(at(4)));
  t.is(lookups[1].status.code, SpanStatusCode.UNSET);
  t.is(h.one('request').attributes.hit_rate, 0.5);
});

test('a lookup still open at REQUEST_END is ended then (its END can no longer come), not after the TTL', (t) => {
  const h = harness();
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_LOOKUP_PREFETCH_START', 's', 1), ev('MP_REQUEST_END', 's', 5));
  const lp = h.one('mp.lookup_prefetch');
  t.is(lp.attributes['kvmp.leak_reason'], 'end_missing');
  t.is(ns(lp.endTime), ns(at(5)));
  t.is(parentId(lp), spanId(h.one('request')));
  t.is(h.tracker.stats().openSessions, 0);
});
