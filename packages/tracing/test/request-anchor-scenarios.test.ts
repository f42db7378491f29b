/**
 * Every scenario of the anchor's suite (research note §4.1), asserted on exported spans:
 * names, parent ids, start/end times and typed attributes.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import test from 'ava';
import { REQUEST_TRACING_EVENT_TYPES } from '../src/index.js';
import { at, ev, harness, ns, parentId, spanId } from './fixtures/request-harness.js';

test('1: subscribes to the 4 sentinels, 3 STARTs and 3 ENDs', (t) => {
  t.deepEqual([...REQUEST_TRACING_EVENT_TYPES].sort(), [
    'MP_LOOKUP_PREFETCH_END',
    'MP_LOOKUP_PREFETCH_START',
    'MP_REQUEST_END',
    'MP_REQUEST_START',
    'MP_RETRIEVE_END',
    'MP_RETRIEVE_START',
    'MP_RETRIEVE_SUBMITTED',
    'MP_STORE_END',
    'MP_STORE_START',
    'MP_STORE_SUBMITTED',
  ]);
});

test('2: root span opens at REQUEST_START and is registered', (t) => {
  const h = harness();
  h.feed(ev('MP_REQUEST_START', 's', 0, { meta: { model_name: 'llama' } }));
  t.truthy(h.registry.get('s', 'request'));
  t.is(h.spans().length, 0, 'nothing is exported while the root is open');
});

test('3: no root span before any event', (t) => {
  const h = harness();
  t.is(h.registry.get('s', 'request'), undefined);
  t.deepEqual(h.registry.allSessionIds(), []);
});

test('4: REQUEST_END closes the root at once when nothing is in flight', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0, { meta: { model_name: 'llama' } }),
    ev('MP_LOOKUP_PREFETCH_START', 's', 10),
    ev('MP_LOOKUP_PREFETCH_END', 's', 20, { meta: { found_count: 4 } }),
    ev('MP_REQUEST_END', 's', 30),
  );
  const root = h.one('request');
  const lp = h.one('mp.lookup_prefetch');
  t.is(root.parentSpanContext, undefined, 'no remote parent: a trace root');
  t.is(parentId(lp), spanId(root));
  t.is(lp.spanContext().traceId, root.spanContext().traceId);
  t.is(ns(root.startTime), ns(at(0)));
  t.is(ns(root.endTime), ns(at(30)));
  t.is(ns(lp.startTime), ns(at(10)));
  t.is(ns(lp.endTime), ns(at(20)));
  t.is(root.attributes.session_id, 's');
  t.is(root.attributes.model_name, 'llama');
  t.is(lp.attributes.found_count, 4, 'typed, not "4"');
  t.deepEqual(h.registry.allSessionIds(), []);
  t.is(h.tracker.stats().openSessions, 0);
  t.is(h.tracker.stats().openSpans, 0);
});

test('5: REQUEST_END is deferred until the submitted store finishes; root ends at REQUEST_END time', (t) => {
  const h = harness();
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_STORE_SUBMITTED', 's', 10), ev('MP_REQUEST_END', 's', 20));
  t.is(h.byName('request').length, 0, 'root still open');
  t.truthy(h.registry.get('s', 'request'));
  h.feed(ev('MP_STORE_START', 's', 30, { opId: 1 }), ev('MP_STORE_END', 's', 40, { opId: 1 }));
  const root = h.one('request');
  const store = h.one('mp.store');
  t.is(ns(root.endTime), ns(at(20)), 'stamped with the logical end, not the GPU end');
  t.is(parentId(store), spanId(root));
  t.is(ns(store.startTime), ns(at(30)));
  t.is(ns(store.endTime), ns(at(40)));
  t.is(store.attributes.stored_count, 4);
  t.is(store.attributes.success, true);
  t.deepEqual(h.registry.allSessionIds(), []);
  t.is(h.tracker.stats().openSessions, 0);
});

test('6: with two stores in flight, both must finish', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_STORE_SUBMITTED', 's', 1),
    ev('MP_STORE_SUBMITTED', 's', 2),
    ev('MP_REQUEST_END', 's', 3),
    ev('MP_STORE_START', 's', 10, { opId: 1 }),
    ev('MP_STORE_END', 's', 20, { opId: 1 }),
  );
  t.is(h.byName('request').length, 0, 'one store still in flight');
  h.feed(ev('MP_STORE_START', 's', 30, { opId: 2 }), ev('MP_STORE_END', 's', 40, { opId: 2 }));
  const root = h.one('request');
  t.is(ns(root.endTime), ns(at(3)));
  t.is(h.byName('mp.store').length, 2);
  for (const s of h.byName('mp.store')) t.is(parentId(s), spanId(root));
});

test('7: store-only session opens the root lazily at STORE_START', (t) => {
  const h = harness();
  h.feed(ev('MP_STORE_SUBMITTED', 's', 0), ev('MP_STORE_START', 's', 10, { opId: 1 }));
  t.truthy(h.registry.get('s', 'request'), 'lazy root exists');
  h.feed(ev('MP_STORE_END', 's', 20, { opId: 1 }), ev('MP_REQUEST_END', 's', 30));
  const root = h.one('request');
  t.is(ns(root.startTime), ns(at(10)), 'root start = first child start');
  t.is(ns(root.endTime), ns(at(30)));
  t.is(parentId(h.one('mp.store')), spanId(root));
  t.is(root.attributes.hit_rate, undefined, '20: store-only roots carry no lookup attributes');
  t.is(root.attributes.hit_tokens, undefined);
});

test('8: REQUEST_END racing RETRIEVE_END is deferred (the race the retrieve counter exists for)', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_RETRIEVE_SUBMITTED', 's', 5),
    ev('MP_RETRIEVE_START', 's', 10, { opId: 7 }),
    ev('MP_REQUEST_END', 's', 15),
  );
  t.is(h.byName('request').length, 0);
  h.feed(ev('MP_RETRIEVE_END', 's', 25, { opId: 7 }));
  const root = h.one('request');
  const retrieve = h.one('mp.retrieve');
  t.is(ns(root.endTime), ns(at(15)));
  t.is(ns(retrieve.endTime), ns(at(25)), 'the child keeps its own GPU end');
  t.is(parentId(retrieve), spanId(root));
});

test('9: deferred until both store and retrieve finish', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_RETRIEVE_SUBMITTED', 's', 1),
    ev('MP_STORE_SUBMITTED', 's', 2),
    ev('MP_REQUEST_END', 's', 3),
    ev('MP_STORE_START', 's', 4, { opId: 2 }),
    ev('MP_STORE_END', 's', 5, { opId: 2 }),
  );
  t.is(h.byName('request').length, 0, 'retrieve still in flight');
  h.feed(ev('MP_RETRIEVE_START', 's', 6, { opId: 1 }), ev('MP_RETRIEVE_END', 's', 7, { opId: 1 }));
  t.is(ns(h.one('request').endTime), ns(at(3)));
});

test('10/11: the retrieve span is registered while open and removed after close', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_RETRIEVE_SUBMITTED', 's', 1),
    ev('MP_RETRIEVE_START', 's', 2, { opId: 9 }),
  );
  const registered = h.registry.get('s', 'retrieve');
  t.truthy(registered);
  t.is(h.registry.get('s', 'retrieve#9')?.span, registered?.span, 'also under its operation-scoped name');
  h.feed(ev('MP_RETRIEVE_END', 's', 3, { opId: 9 }));
  t.is(h.registry.get('s', 'retrieve'), undefined);
  t.is(h.registry.get('s', 'retrieve#9'), undefined);
  t.is(spanId(h.one('mp.retrieve')), registered?.span.spanContext().spanId ?? 'missing');
});

for (const [kind, name] of [
  ['STORE', 'mp.store'],
  ['RETRIEVE', 'mp.retrieve'],
  ['LOOKUP_PREFETCH', 'mp.lookup_prefetch'],
] as const) {
  test(`12-14: ${name} lifecycle: matched START/END export one child with the event times`, (t) => {
    const h = harness();
    h.feed(
      ev('MP_REQUEST_START', 's', 0),
      ev(`MP_${kind}_START`, 's', 100, { opId: 3, workerId: 0 }),
      ev(`MP_${kind}_END`, 's', 250, { opId: 3, workerId: 0 }),
      ev('MP_REQUEST_END', 's', 300),
    );
    const child = h.one(name);
    t.is(ns(child.startTime), ns(at(100)));
    t.is(ns(child.endTime), ns(at(250)));
    t.is(child.attributes.session_id, 's');
    t.is(child.attributes.worker_id, 0);
    t.is(child.attributes.op_id, 3);
    t.is(child.status.code, SpanStatusCode.UNSET);
    t.is(h.tracker.stats().openSpans, 0);
  });
}

test('15: an unmatched END does not crash and exports nothing', (t) => {
  const h = harness();
  t.notThrows(() => h.feed(ev('MP_STORE_END', 's', 0, { opId: 1 })));
  t.is(h.spans().length, 0);
  t.is(h.tracker.stats().unmatchedEnds, 1);
  t.deepEqual(h.registry.allSessionIds(), []);
});

test('16: an unmatched START is ended at shutdown (ERROR, kvmp.leaked)', (t) => {
  const h = harness();
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_STORE_START', 's', 10, { opId: 1 }));
  h.tracker.shutdown();
  const store = h.one('mp.store');
  const root = h.one('request');
  t.is(store.status.code, SpanStatusCode.ERROR);
  t.is(store.attributes['kvmp.leaked'], true);
  t.is(store.attributes['kvmp.leak_reason'], 'shutdown');
  t.is(root.attributes['kvmp.leaked'], true);
  t.is(parentId(store), spanId(root));
  t.is(ns(store.endTime), ns(at(10)), 'ended at the last event seen, never before its start');
  t.deepEqual(h.registry.allSessionIds(), []);
  t.is(h.tracker.stats().openSpans, 0);
  t.is(h.tracker.stats().leakedByReason.shutdown, 2);
});

test('17: five interleaved sessions each get one closed root with their own children', (t) => {
  const h = harness();
  const ids = ['a', 'b', 'c', 'd', 'e'];
  let us = 0;
  for (const id of ids) h.feed(ev('MP_REQUEST_START', id, us++));
  for (const id of ids) h.feed(ev('MP_STORE_SUBMITTED', id, us++));
  for (const id of ids) h.feed(ev('MP_REQUEST_END', id, us++));
  for (const [i, id] of ids.entries()) h.feed(ev('MP_STORE_START', id, us++, { opId: i + 1 }));
  for (const [i, id] of [...ids.entries()].reverse()) h.feed(ev('MP_STORE_END', id, us++, { opId: i + 1 }));
  const roots = h.byName('request');
  t.is(roots.length, 5);
  for (const root of roots) {
    const stores = h.byName('mp.store').filter((s) => parentId(s) === spanId(root));
    t.is(stores.length, 1);
    t.is(stores[0].attributes.session_id, root.attributes.session_id);
  }
  t.is(new Set(roots.map((r) => r.spanContext().traceId)).size, 5, 'one trace per request');
  t.deepEqual(h.registry.allSessionIds(), []);
});

test('18: lookup attributes on the root are typed: hit_tokens, requested_tokens, hit_rate and the tier split', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_LOOKUP_PREFETCH_START', 's', 1),
    ev('MP_LOOKUP_PREFETCH_END', 's', 2, {
      meta: { hit_tokens: 512, requested_tokens: 1024, l1_hit_tokens: 256, l2_hit_tokens: 256, model_name: 'llama' },
    }),
    ev('MP_REQUEST_END', 's', 3),
  );
  const root = h.one('request');
  t.is(root.attributes.hit_tokens, 512);
  t.is(root.attributes.requested_tokens, 1024);
  t.is(root.attributes.hit_rate, 0.5);
  t.is(root.attributes.l1_hit_tokens, 256);
  t.is(root.attributes.l2_hit_tokens, 256);
  t.is(root.attributes.l1_hit_rate, 0.25);
  t.is(root.attributes.l2_hit_rate, 0.25);
  t.is(root.attributes.early_exit_reason, '');
  t.is(root.attributes.model_name, 'llama');
  t.is(root.attributes.session_id, 's');
});

test('19: hit_rate is 0 when nothing was requested (0/0), with the early-exit reason', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_LOOKUP_PREFETCH_START', 's', 1),
    ev('MP_LOOKUP_PREFETCH_END', 's', 2, { meta: { early_exit_reason: 'no_gpu_context' } }),
    ev('MP_REQUEST_END', 's', 3),
  );
  const root = h.one('request');
  t.is(root.attributes.hit_rate, 0);
  t.is(root.attributes.l1_hit_rate, 0);
  t.is(root.attributes.l2_hit_rate, 0);
  t.is(root.attributes.early_exit_reason, 'no_gpu_context');
  t.is(root.status.code, SpanStatusCode.UNSET);
});
