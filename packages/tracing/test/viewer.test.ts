import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import test from 'ava';
import { RecentTraces } from '../src/viewer/recent-traces.js';
import { buildRequestTrees } from '../src/viewer/request-tree.js';
import { renderWaterfall } from '../src/viewer/terminal-waterfall.js';

const T0 = 1_800_000_000;

/** Ends a request tree through a real SDK provider with explicit times (ms offsets). */
function emitTree(provider: BasicTracerProvider, session: string, deferred: boolean, baseMs = 0): void {
  const tracer = provider.getTracer('test');
  const at = (ms: number): [number, number] => [T0, (baseMs + ms) * 1e6];
  const root = tracer.startSpan('request', { startTime: at(0), attributes: { session_id: session, hit_rate: 0.75 } });
  const ctx = trace.setSpan(ROOT_CONTEXT, root);
  const lp = tracer.startSpan('mp.lookup_prefetch', { startTime: at(0.1) }, ctx);
  lp.end(at(0.3));
  const retrieve = tracer.startSpan('mp.retrieve', { startTime: at(0.5) }, ctx);
  const l2 = tracer.startSpan('l2.load', { startTime: at(0.6) }, trace.setSpan(ROOT_CONTEXT, retrieve));
  l2.end(at(0.9));
  retrieve.end(at(1.5));
  const store = tracer.startSpan('mp.store', { startTime: at(2) }, ctx);
  store.setStatus({ code: SpanStatusCode.ERROR, message: 'copy failed' });
  store.end(at(3));
  if (deferred) root.setAttribute('kvmp.deferred_close', true);
  root.end(at(4));
}

test('recent traces: trees built as roots end, newest first, bounded', (t) => {
  const recent = new RecentTraces(2);
  const provider = new BasicTracerProvider({ spanProcessors: [recent] });
  emitTree(provider, 'a', false);
  emitTree(provider, 'b', true);
  emitTree(provider, 'c', false);
  const trees = recent.list();
  t.deepEqual(
    trees.map((x) => x.sessionId),
    ['c', 'b'],
    'bounded to 2, newest first',
  );
  const b = trees[1];
  t.true(b.deferred);
  t.is(b.errors, 1);
  t.is(b.hitRate, 0.75);
  t.is(b.durationMs, 4);
  t.deepEqual(
    b.spans.map((s) => [s.name, s.depth, s.startMs, s.durationMs]),
    [
      ['request', 0, 0, 4],
      ['mp.lookup_prefetch', 1, 0.1, 0.2],
      ['mp.retrieve', 1, 0.5, 1],
      ['l2.load', 2, 0.6, 0.3],
      ['mp.store', 1, 2, 1],
    ],
  );
});

test('a tree is not shown before its root ends', (t) => {
  const recent = new RecentTraces();
  const provider = new BasicTracerProvider({ spanProcessors: [recent] });
  const tracer = provider.getTracer('test');
  const root = tracer.startSpan('request', { startTime: [T0, 0] });
  tracer.startSpan('mp.store', { startTime: [T0, 1e6] }, trace.setSpan(ROOT_CONTEXT, root)).end([T0, 2e6]);
  t.is(recent.list().length, 0);
  root.end([T0, 3e6]);
  t.is(recent.list()[0].spans.length, 2);
});

test('recent spans live in a fixed ring: a tree that lost spans to it is never shown half', (t) => {
  // Five spans per tree (request, lookup, retrieve, l2.load, store); room for 12 spans.
  const recent = new RecentTraces(10, 12);
  const provider = new BasicTracerProvider({ spanProcessors: [recent] });
  emitTree(provider, 'a', false, 0);
  emitTree(provider, 'b', false, 10);
  emitTree(provider, 'c', false, 20);
  // 15 spans written: a's first three were overwritten, so a is incomplete and left out.
  t.deepEqual(
    recent.list().map((x) => [x.sessionId, x.spans.length]),
    [
      ['c', 5],
      ['b', 5],
    ],
  );
});

test('a late child that ends after its root is shown with it; requests sharing a trace each get a tree', (t) => {
  const recent = new RecentTraces();
  const provider = new BasicTracerProvider({ spanProcessors: [recent] });
  const tracer = provider.getTracer('test');
  const upstream = tracer.startSpan('gateway', { startTime: [T0, 0] });
  const up = trace.setSpan(ROOT_CONTEXT, upstream);
  const one = tracer.startSpan('request', { startTime: [T0, 1e6], attributes: { session_id: 'one' } }, up);
  const two = tracer.startSpan('request', { startTime: [T0, 2e6], attributes: { session_id: 'two' } }, up);
  one.end([T0, 3e6]);
  two.end([T0, 4e6]);
  const late = tracer.startSpan('mp.store', { startTime: [T0, 5e6] }, trace.setSpan(ROOT_CONTEXT, one));
  late.end([T0, 6e6]);
  upstream.end([T0, 7e6]);
  const trees = recent.list();
  t.deepEqual(
    trees.map((x) => [x.sessionId, x.spans.map((s) => s.name)]),
    [
      ['two', ['request']],
      ['one', ['request', 'mp.store']],
    ],
  );
});

test('under load the viewer keeps a sample of traces: a burst, then tracesPerSecond', (t) => {
  let nowMs = 0;
  const recent = new RecentTraces(5, 80, 2, () => nowMs); // burst 5, then 2 traces a second
  const provider = new BasicTracerProvider({ spanProcessors: [recent] });
  for (let i = 0; i < 8; i++) emitTree(provider, `s${i}`, false, i * 10);
  nowMs = 1000;
  for (let i = 8; i < 11; i++) emitTree(provider, `s${i}`, false, i * 10);
  t.deepEqual(
    recent.list(100).map((x) => [x.sessionId, x.spans.length]),
    [
      ['s9', 5],
      ['s8', 5],
      ['s4', 5],
      ['s3', 5],
      ['s2', 5],
      ['s1', 5],
      ['s0', 5],
    ],
    'admitted traces are whole; the others left no spans behind',
  );
});

test('terminal waterfall places bars in time relative to the root', (t) => {
  const recent = new RecentTraces();
  emitTree(new BasicTracerProvider({ spanProcessors: [recent] }), 's-1', true);
  const text = renderWaterfall(recent.list()[0], { width: 40 });
  const lines = text.split('\n');
  t.regex(lines[0], /^request s-1 {2}4\.00 ms {2}hit 75% {2}deferred close {2}1 error/);
  const bar = (name: string) => {
    const line = lines.slice(1).find((l) => l.trimStart().startsWith(`${name} `)) ?? '';
    const inner = line.slice(line.indexOf('|') + 1, line.lastIndexOf('|'));
    return { from: inner.indexOf('█'), len: inner.split('█').length - 1, line };
  };
  t.deepEqual([bar('request').from, bar('request').len], [0, 40], 'root spans the whole width');
  t.deepEqual([bar('mp.store').from, bar('mp.store').len], [20, 10], 'store: 2–3 ms of 4 ms');
  t.regex(bar('mp.store').line, /ERROR: copy failed/);
  t.true(bar('l2.load').from > bar('mp.retrieve').from, 'the nested load starts inside the retrieve');
});

test('request trees from exported span records ignore spans without their root', (t) => {
  const rec = (name: string, spanId: string, parentSpanId: string | undefined, s: number, e: number) => ({
    traceId: 't1',
    spanId,
    parentSpanId,
    name,
    startTimeUnixNano: BigInt(s),
    endTimeUnixNano: BigInt(e),
    attributes: {},
    status: { code: 'UNSET' as const },
  });
  const trees = buildRequestTrees([
    rec('mp.store', 'b', 'a', 10, 20),
    rec('orphan', 'z', 'y', 0, 5),
    rec('request', 'a', 'remote', 0, 30),
  ]);
  t.is(trees.length, 1);
  t.deepEqual(
    trees[0].spans.map((s) => s.name),
    ['request', 'mp.store'],
  );
});

test('the drain thread keeps recent request trees for the viewer (recentTraces)', async (t) => {
  const { EventPipeline, recentTraces, requestTracingSubscriber } = await import('../src/index.js');
  const pipeline = new EventPipeline({
    subscribers: [requestTracingSubscriber({ exporter: 'none', viewerTraces: 5 })],
  });
  t.teardown(() => pipeline.stop());
  await pipeline.start();
  const pub = pipeline.publisher;
  const copy = { device: 'cpu', engine_id: 'e', model_name: 'm' };
  for (let i = 0; i < 7; i++) {
    const sid = `s-${i}`;
    pub.publish('MP_REQUEST_START', sid, { model_name: 'm' });
    pub.publish('MP_STORE_SUBMITTED', sid, { device: 'cpu' }, { opId: i + 1 });
    pub.publish('MP_STORE_START', sid, copy, { opId: i + 1, workerId: 0 });
    pub.publish('MP_REQUEST_END', sid, {});
    pub.publish(
      'MP_STORE_END',
      sid,
      { ...copy, stored_count: 1, total_bytes: 10, num_tokens: 256, success: true },
      { opId: i + 1, workerId: 0 },
    );
  }
  let trees = await recentTraces(pipeline);
  for (let i = 0; i < 200 && trees.length < 5; i++) {
    await new Promise((r) => setTimeout(r, 10));
    trees = await recentTraces(pipeline);
  }
  t.deepEqual(
    trees.map((x) => x.sessionId),
    ['s-6', 's-5', 's-4', 's-3', 's-2'],
  );
  t.true(trees.every((x) => x.deferred));
  t.deepEqual(
    trees[0].spans.map((s) => s.name),
    ['request', 'mp.store'],
  );
  t.is((await recentTraces(pipeline, 2)).length, 2);
});
