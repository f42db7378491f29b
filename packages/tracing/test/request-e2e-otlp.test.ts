/**
 * End to end: events published from several threads (a gateway thread with an active HTTP
 * span, two tensor-parallel worker threads publishing GPU-ordered events) through the real
 * ring and drain thread, exported over OTLP http/protobuf to an in-process receiver on
 * 127.0.0.1, and the trees checked there, three levels deep.
 */
import { Worker } from 'node:worker_threads';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import test from 'ava';
import {
  captureTraceCarrier,
  EventPipeline,
  now,
  type RequestTracingStatsMessage,
  requestTracingSubscriber,
} from '../src/index.js';
import { listen, uniqueChannel } from './fixtures/broadcast.js';
import type { DecodedSpan } from './fixtures/otlp-proto.js';
import { startOtlpReceiver } from './fixtures/otlp-receiver.js';

const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.index).then(({ attachPublisher }) => {
  const pub = attachPublisher(workerData.ring);
  const w = workerData.workerId;
  const gpu = { device: 'cuda:' + w, engine_id: 'e', model_name: 'llama' };
  parentPort.on('message', (m) => {
    if (m.kind === 'done') { parentPort.postMessage('done'); return; }
    const o = (opId) => ({ opId, workerId: w });
    pub.publish('MP_RETRIEVE_START', m.sid, gpu, o(m.r));
    pub.publish('L1_READ_RESERVED', m.sid, { key_count: 3 }, o(m.r));
    pub.publish('L1_READ_FINISHED', m.sid, { key_count: 3 }, o(m.r));
    pub.publish('MP_RETRIEVE_END', m.sid, { ...gpu, retrieved_count: 3, total_bytes: 3 * 65536, num_tokens: 48, success: true }, o(m.r));
    pub.publish('MP_STORE_START', m.sid, gpu, o(m.s));
    pub.publish('MP_STORE_END', m.sid, { ...gpu, stored_count: 2, total_bytes: 131072, num_tokens: 32, success: w === 0, error: w === 0 ? undefined : 'no space' }, o(m.s));
  });
  parentPort.postMessage('ready');
});
`;

function nsOf(t: readonly [number, number]): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

test('multi-thread publish → ring → drain → OTLP protobuf → receiver: one tree per request, three levels', async (t) => {
  const receiver = await startOtlpReceiver();
  const statsName = uniqueChannel('e2e-stats');
  const stats = listen<RequestTracingStatsMessage>(statsName);
  const pipeline = new EventPipeline({
    subscribers: [
      requestTracingSubscriber({
        exporter: 'otlp-proto',
        endpoint: receiver.url,
        serviceName: 'kvmp-e2e',
        serviceInstanceId: 'instance-7',
        statsChannel: statsName,
      }),
      { module: new URL('./fixtures/l2-load-subscriber.js', import.meta.url).href },
    ],
  });
  await pipeline.start();
  const index = new URL('../src/index.js', import.meta.url).href;
  const workers = [0, 1].map(
    (workerId) => new Worker(WORKER_SOURCE, { eval: true, workerData: { index, ring: pipeline.handle, workerId } }),
  );
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));

  const gateway = new BasicTracerProvider().getTracer('gateway');
  const pub = pipeline.publisher;
  const SESSIONS = 40;
  const expected = new Map<string, { traceId: string; parent: string; end: bigint }>();
  for (let i = 0; i < SESSIONS; i++) {
    const sid = `req-${i}`;
    await gateway.startActiveSpan('gateway POST /v1/completions', async (span) => {
      await Promise.resolve();
      const trace = captureTraceCarrier();
      pub.publish('MP_REQUEST_START', sid, { model_name: 'llama' }, { trace });
      const lp = pub.nextOpId();
      pub.publish('MP_LOOKUP_PREFETCH_START', sid, { model_name: 'llama' }, { opId: lp, trace });
      pub.publish(
        'MP_LOOKUP_PREFETCH_END',
        sid,
        {
          found_count: 3,
          requested_tokens: 64,
          hit_tokens: 48,
          l1_hit_tokens: 32,
          l2_hit_tokens: 16,
          l1_hit_keys: 2,
          l2_hit_keys: 1,
          early_exit_reason: '',
        },
        { opId: lp, trace },
      );
      const r = pub.nextOpId();
      const s = pub.nextOpId();
      for (const workerId of [0, 1]) {
        pub.publish('MP_RETRIEVE_SUBMITTED', sid, { device: `cuda:${workerId}` }, { opId: r, workerId, trace });
        pub.publish('MP_STORE_SUBMITTED', sid, { device: `cuda:${workerId}` }, { opId: s, workerId, trace });
      }
      for (const w of workers) w.postMessage({ sid, r, s });
      // REQUEST_END races the workers' GPU events on purpose.
      const end = now();
      pub.publish('MP_REQUEST_END', sid, {}, { trace, time: end });
      const ids = span.spanContext();
      expected.set(sid, { traceId: ids.traceId, parent: ids.spanId, end: nsOf(end) });
      span.end();
    });
  }
  for (const w of workers) w.postMessage({ kind: 'done' });
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  await Promise.all(workers.map((w) => w.terminate()));
  const metrics = await pipeline.stop();
  const final = await stats.next((m) => m.kind === 'shutdown');
  stats.close();
  await receiver.close();

  t.is(metrics?.dropped, 0);
  t.deepEqual(metrics?.subscriberErrors, { 'request-tracing': 0, 'l2-load': 0 });
  t.deepEqual([...receiver.contentTypes], ['application/x-protobuf']);
  t.is(receiver.spans.length, SESSIONS * 8, 'root + lookup + 2 retrieves + 2 l2.loads + 2 stores per request');
  t.is(final.stats.leakedSpans, 0);
  t.is(final.stats.openSpans, 0);
  t.is(final.stats.rootsEnded, SESSIONS);

  const byParent = new Map<string, DecodedSpan[]>();
  for (const s of receiver.spans) {
    const list = byParent.get(s.parentSpanId ?? '') ?? [];
    list.push(s);
    byParent.set(s.parentSpanId ?? '', list);
  }
  for (const [sid, exp] of expected) {
    const roots = receiver.spans.filter((s) => s.name === 'request' && s.attributes.session_id === sid);
    t.is(roots.length, 1, sid);
    const root = roots[0];
    t.is(root.traceId, exp.traceId, 'the gateway span is the trace');
    t.is(root.parentSpanId, exp.parent, "the gateway's span is the root's parent");
    t.is(root.endTimeUnixNano, exp.end, 'root ends at REQUEST_END, whatever the GPU did');
    t.is(root.resource['service.name'], 'kvmp-e2e');
    t.is(root.resource['service.instance.id'], 'instance-7');
    t.is(root.attributes.hit_tokens, 48n, 'intValue on the wire');
    t.is(root.attributes.hit_rate, 0.75, 'doubleValue on the wire');
    t.is(root.attributes.l1_hit_rate, 0.5);
    t.is(root.attributes.model_name, 'llama');
    const children = byParent.get(root.spanId) ?? [];
    t.deepEqual(
      children.map((c) => `${c.name}/${c.attributes.worker_id ?? '-'}`).sort(),
      ['mp.lookup_prefetch/-', 'mp.retrieve/0', 'mp.retrieve/1', 'mp.store/0', 'mp.store/1'],
      sid,
    );
    for (const c of children) t.is(c.traceId, root.traceId);
    for (const retrieve of children.filter((c) => c.name === 'mp.retrieve')) {
      const loads = byParent.get(retrieve.spanId) ?? [];
      t.deepEqual(
        loads.map((l) => l.name),
        ['l2.load'],
        'third level under the same worker retrieve',
      );
      t.true(loads[0].startTimeUnixNano >= retrieve.startTimeUnixNano);
    }
    const failed = children.find((c) => c.name === 'mp.store' && c.attributes.worker_id === 1n);
    t.is(failed?.status.code, 2, 'STATUS_CODE_ERROR');
    t.is(failed?.status.message, 'no space');
  }
});

test.after(() => {
  contextManager.disable();
});
