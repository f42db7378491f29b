/**
 * W3C trace context: captured on the publishing thread (explicit headers or the caller's
 * active OTel context), extracted on the drain thread as the parent of the request root.
 */
import { context, ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import test from 'ava';
import { captureTraceCarrier, traceCarrierFromHeaders } from '../src/index.js';
import { extractTraceContext } from '../src/propagation/extract-trace-context.js';
import { ev, harness, parentId, spanId } from './fixtures/request-harness.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const SAMPLED = `00-${TRACE_ID}-${PARENT_ID}-01`;
const UNSAMPLED = `00-${TRACE_ID}-${PARENT_ID}-00`;

const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);

test('captureTraceCarrier reads the active context across awaits (AsyncLocalStorage)', async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('gw');
  t.is(captureTraceCarrier(), undefined, 'no active span: nothing to carry');
  const carrier = await tracer.startActiveSpan('gateway.http', async (span) => {
    await new Promise((resolve) => setImmediate(resolve));
    const c = captureTraceCarrier();
    span.end();
    return { c, ids: span.spanContext() };
  });
  t.deepEqual(carrier.c, { traceparent: `00-${carrier.ids.traceId}-${carrier.ids.spanId}-01` });
});

test('captureTraceCarrier keeps tracestate and the unsampled flag, never baggage', (t) => {
  const ctx = extractTraceContext({ traceparent: UNSAMPLED, tracestate: 'vendor=abc,other=1' });
  const carrier = captureTraceCarrier(ctx);
  t.deepEqual(carrier, { traceparent: UNSAMPLED, tracestate: 'vendor=abc,other=1' });
  t.deepEqual(Object.keys(carrier ?? {}).sort(), ['traceparent', 'tracestate']);
});

test('traceCarrierFromHeaders takes only traceparent/tracestate, case-insensitively, and drops invalid values', (t) => {
  t.deepEqual(traceCarrierFromHeaders({ TraceParent: SAMPLED, TRACESTATE: 'a=1', baggage: 'user=secret' }), {
    traceparent: SAMPLED,
    tracestate: 'a=1',
  });
  t.deepEqual(traceCarrierFromHeaders({ traceparent: SAMPLED, tracestate: ['a=1', 'b=2'] }), {
    traceparent: SAMPLED,
    tracestate: 'a=1,b=2',
  });
  t.is(traceCarrierFromHeaders({}), undefined);
  t.is(traceCarrierFromHeaders({ traceparent: 'bad' }), undefined);
  t.is(traceCarrierFromHeaders({ traceparent: [SAMPLED, SAMPLED] }), undefined, 'two traceparents are invalid');
  t.is(traceCarrierFromHeaders({ traceparent: `00-${'0'.repeat(32)}-${PARENT_ID}-01` }), undefined, 'zero trace id');
  t.deepEqual(
    traceCarrierFromHeaders({ traceparent: SAMPLED, tracestate: 'x'.repeat(513) }),
    { traceparent: SAMPLED },
    'an oversized tracestate is dropped, the parent kept',
  );
});

test('extractTraceContext: invalid or missing carriers give an empty context, never an error', (t) => {
  for (const bad of [undefined, { traceparent: '' }, { traceparent: 'x'.repeat(513) }, { traceparent: 'bad' }]) {
    t.is(extractTraceContext(bad), ROOT_CONTEXT);
  }
  const ctx = extractTraceContext({ traceparent: SAMPLED });
  t.is(trace.getSpanContext(ctx)?.spanId, PARENT_ID);
  t.true(trace.getSpanContext(ctx)?.isRemote);
});

test('sampled remote parent: the request root is its child and the whole tree shares its trace id', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0, { trace: { traceparent: SAMPLED, tracestate: 'vendor=abc' } }),
    ev('MP_LOOKUP_PREFETCH_START', 's', 1, { trace: { traceparent: SAMPLED } }),
    ev('MP_LOOKUP_PREFETCH_END', 's', 2),
    ev('MP_REQUEST_END', 's', 3),
  );
  const root = h.one('request');
  t.is(root.spanContext().traceId, TRACE_ID);
  t.is(parentId(root), PARENT_ID);
  t.is(root.spanContext().traceState?.get('vendor'), 'abc', 'tracestate preserved');
  t.is(parentId(h.one('mp.lookup_prefetch')), spanId(root));
  for (const s of h.spans()) {
    for (const key of ['traceparent', 'tracestate', 'baggage', 'token_ids']) t.false(key in s.attributes);
  }
});

test('GPU-ordered events carry no context: the lazy root uses the carrier captured by the CPU SUBMITTED', (t) => {
  const h = harness();
  h.feed(
    ev('MP_STORE_SUBMITTED', 's', 0, { trace: { traceparent: SAMPLED } }),
    ev('MP_STORE_START', 's', 1, { opId: 1 }),
    ev('MP_STORE_END', 's', 2, { opId: 1 }),
    ev('MP_REQUEST_END', 's', 3),
  );
  const root = h.one('request');
  t.is(root.spanContext().traceId, TRACE_ID);
  t.is(parentId(root), PARENT_ID);
  t.is(h.one('mp.store').spanContext().traceId, TRACE_ID);
});

test('unsampled remote parent: nothing is exported for that request, and nothing stays open', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0, { trace: { traceparent: UNSAMPLED } }),
    ev('MP_STORE_SUBMITTED', 's', 1, { trace: { traceparent: UNSAMPLED } }),
    ev('MP_REQUEST_END', 's', 2),
    ev('MP_STORE_START', 's', 3, { opId: 1 }),
  );
  t.is(h.registry.get('s', 'store')?.span.spanContext().traceFlags, TraceFlags.NONE);
  h.feed(ev('MP_STORE_END', 's', 4, { opId: 1 }));
  h.feed(ev('MP_REQUEST_START', 'other', 5), ev('MP_REQUEST_END', 'other', 6));
  t.deepEqual(
    h.spans().map((s) => s.attributes.session_id),
    ['other'],
    'only the unrelated sampled request is exported',
  );
  t.is(h.tracker.stats().openSpans, 0);
  t.deepEqual(h.registry.allSessionIds(), []);
});

test('an invalid carrier is ignored: the root becomes a trace root, nothing fails', (t) => {
  const h = harness();
  t.notThrows(() =>
    h.feed(
      ev('MP_REQUEST_START', 's', 0, { trace: { traceparent: 'ff-not-a-traceparent' } }),
      ev('MP_REQUEST_END', 's', 1),
    ),
  );
  const root = h.one('request');
  t.is(root.parentSpanContext, undefined);
  t.not(root.spanContext().traceId, TRACE_ID);
});

test.after(() => {
  contextManager.disable();
});
