import { Worker } from 'node:worker_threads';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import test from 'ava';
import { getSpanRegistry, operationScopedName, SpanRegistry, ThreadAffinityError } from '../src/index.js';

function tracing() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { exporter, tracer: provider.getTracer('registry-test') };
}

test('open / get / getContext / pop round trip, and the context holds the span', (t) => {
  const { tracer } = tracing();
  const registry = new SpanRegistry();
  const span = tracer.startSpan('request');
  registry.open('s', 'request', span);
  t.is(registry.get('s', 'request')?.span, span);
  const ctx = registry.getContext('s', 'request');
  t.is(ctx && trace.getSpan(ctx), span, 'children started with this context nest under the span');
  t.deepEqual(registry.allSessionIds(), ['s']);
  t.is(registry.pop('s', 'request')?.span, span);
  t.is(registry.get('s', 'request'), undefined);
  t.deepEqual(registry.allSessionIds(), [], 'an empty session is forgotten');
  t.is(registry.pop('s', 'request'), undefined, 'popping twice is harmless');
});

test('two spans under one name: get returns the latest still open; pop(span) removes exactly that one', (t) => {
  const { tracer } = tracing();
  const registry = new SpanRegistry();
  const first = tracer.startSpan('mp.store');
  const second = tracer.startSpan('mp.store');
  registry.open('s', 'store', first);
  registry.open('s', 'store', second);
  t.is(registry.get('s', 'store')?.span, second);
  t.is(registry.pop('s', 'store', first)?.span, first, 'the first store ends first');
  t.is(registry.get('s', 'store')?.span, second, 'the second is not overwritten or lost');
  t.is(registry.pop('s', 'store', first), undefined, 'not registered any more');
  t.is(registry.size, 1);
});

test('operation-scoped names registered literally tell concurrent operations apart', (t) => {
  t.is(operationScopedName('store', 42), 'store#42');
  t.is(operationScopedName('store', 42, 1), 'store#42@1');
  const { tracer } = tracing();
  const registry = new SpanRegistry();
  const a = tracer.startSpan('a');
  const b = tracer.startSpan('b');
  registry.open('s', operationScopedName('store', 1), a);
  registry.open('s', operationScopedName('store', 2), b);
  t.is(registry.get('s', 'store#1')?.span, a);
  t.is(registry.get('s', 'store#2')?.span, b);
  t.is(registry.firstContext('s', ['retrieve#1', 'store#2', 'request']), registry.getContext('s', 'store#2'));
  t.is(registry.firstContext('s', ['retrieve#1']), undefined);
});

test('clearSession ends each open span once (even when registered under two names) and only that session', (t) => {
  const { tracer, exporter } = tracing();
  const registry = new SpanRegistry();
  const store = tracer.startSpan('mp.store', { startTime: [1_700_000_000, 0] });
  const root = tracer.startSpan('request', { startTime: [1_700_000_000, 0] });
  const other = tracer.startSpan('request');
  registry.open('s', 'store', store);
  registry.open('s', 'store#1', store);
  registry.open('s', 'request', root);
  registry.open('t', 'request', other);
  t.is(registry.clearSession('s', [1_700_000_000, 5]), 2);
  t.deepEqual(
    exporter
      .getFinishedSpans()
      .map((s) => s.name)
      .sort(),
    ['mp.store', 'request'],
  );
  for (const span of exporter.getFinishedSpans()) t.deepEqual(span.endTime, [1_700_000_000, 5]);
  t.deepEqual(registry.allSessionIds(), ['t']);
  t.is(registry.clearSession('nobody'), 0);
});

test('getSpanRegistry refuses the main thread in development builds', (t) => {
  const err = t.throws(() => getSpanRegistry());
  t.true(err instanceof ThreadAffinityError);
});

test('getSpanRegistry is one registry per worker thread, shared by every caller there', async (t) => {
  const url = new URL('../src/index.js', import.meta.url).href;
  const worker = new Worker(
    `import(${JSON.stringify(url)}).then((m) => {
       const a = m.getSpanRegistry(); const b = m.getSpanRegistry();
       require('node:worker_threads').parentPort.postMessage(a === b && a instanceof m.SpanRegistry);
     });`,
    { eval: true },
  );
  const same = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  t.true(same);
});

test('openAll registers one span under several names; popAll removes it from all of them', (t) => {
  const { tracer } = tracing();
  const registry = new SpanRegistry();
  const span = tracer.startSpan('mp.retrieve');
  const entry = registry.openAll('s', ['retrieve', 'retrieve#7', 'retrieve#7@1'], span);
  for (const name of ['retrieve', 'retrieve#7', 'retrieve#7@1']) t.is(registry.get('s', name), entry);
  t.is(trace.getSpan(entry.context), span, 'the default context holds the span (built on first use)');
  t.is(registry.size, 3);
  registry.popAll('s', ['retrieve', 'retrieve#7', 'retrieve#7@1'], span);
  t.is(registry.size, 0);
  t.deepEqual(registry.allSessionIds(), []);
});

test('openOperation: one registration reachable as logical, logical#op and logical#op@worker', (t) => {
  const { tracer } = tracing();
  const registry = new SpanRegistry();
  const r0 = tracer.startSpan('mp.retrieve');
  const r1 = tracer.startSpan('mp.retrieve');
  const other = tracer.startSpan('mp.retrieve');
  registry.openOperation('s', 'retrieve', 7, 0, r0);
  registry.openOperation('s', 'retrieve', 7, 1, r1);
  registry.openOperation('s', 'retrieve', 8, undefined, other);
  t.is(registry.get('s', 'retrieve')?.span, other, 'plain name: the latest');
  t.is(registry.get('s', operationScopedName('retrieve', 7, 0))?.span, r0);
  t.is(registry.get('s', operationScopedName('retrieve', 7, 1))?.span, r1);
  t.is(registry.get('s', operationScopedName('retrieve', 7))?.span, r1, 'any worker: the latest of op 7');
  t.is(registry.get('s', operationScopedName('retrieve', 8))?.span, other);
  t.is(registry.get('s', operationScopedName('retrieve', 9)), undefined);
  t.is(registry.get('s', operationScopedName('store', 7)), undefined);
  t.is(registry.size, 3, 'an operation counts once');
  t.deepEqual(registry.names('s').sort(), ['retrieve', 'retrieve#7', 'retrieve#7@0', 'retrieve#7@1', 'retrieve#8']);
  registry.pop('s', 'retrieve', r1);
  t.is(registry.get('s', 'retrieve#7')?.span, r0);
  t.is(registry.get('s', 'retrieve#7@1'), undefined);
});

test('a literal name containing # is found as registered, not as an operation', (t) => {
  const { tracer } = tracing();
  const registry = new SpanRegistry();
  const span = tracer.startSpan('l2.load');
  registry.open('s', 'l2.load#5@0', span);
  t.is(registry.get('s', 'l2.load#5@0')?.span, span);
  t.is(registry.pop('s', 'l2.load#5@0')?.span, span);
});
