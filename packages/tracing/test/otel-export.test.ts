/**
 * The drain thread's OTel setup: standard env vars honoured (endpoint, protocol, service
 * name, resource attributes), OTLP http/json to TestCollector, and the JSON-lines file
 * exporter read back after `pipeline.stop()`, including leaked spans (sweep and shutdown).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import test from 'ava';
import {
  EventPipeline,
  type RequestTracingStatsMessage,
  readSpanFile,
  requestTracingSubscriber,
  resolveExporterKind,
} from '../src/index.js';
import { JsonLinesSpanExporter } from '../src/otel/jsonl-span-exporter.js';
import { createSpanExporter } from '../src/otel/span-exporter-factory.js';
import { spanToJsonLine, spanToRecordObject } from '../src/otel/span-record.js';
import { listen, uniqueChannel } from './fixtures/broadcast.js';

const dir = mkdtempSync(join(tmpdir(), 'kvmp-otel-'));
let files = 0;
const tmpFile = () => join(dir, `spans-${files++}.jsonl`);

const LP_END = {
  found_count: 1,
  requested_tokens: 100,
  hit_tokens: 100,
  l1_hit_tokens: 60,
  l2_hit_tokens: 40,
  l1_hit_keys: 3,
  l2_hit_keys: 2,
  early_exit_reason: '',
};

function publishRequest(pipeline: EventPipeline, sid: string, opts: { dropStoreEnd?: boolean } = {}): void {
  const pub = pipeline.publisher;
  pub.publish('MP_REQUEST_START', sid, { model_name: 'm' });
  pub.publish('MP_LOOKUP_PREFETCH_START', sid, {}, { opId: 1 });
  pub.publish('MP_LOOKUP_PREFETCH_END', sid, LP_END, { opId: 1 });
  pub.publish('MP_STORE_SUBMITTED', sid, { device: 'cuda:0' }, { opId: 2 });
  pub.publish('MP_REQUEST_END', sid, {});
  pub.publish('MP_STORE_START', sid, { device: 'cuda:0', engine_id: 'e', model_name: 'm' }, { opId: 2 });
  if (!opts.dropStoreEnd) {
    const meta = {
      device: 'cuda:0',
      engine_id: 'e',
      model_name: 'm',
      stored_count: 1,
      total_bytes: 10,
      num_tokens: 16,
    };
    pub.publish('MP_STORE_END', sid, { ...meta, success: true }, { opId: 2 });
  }
}

test('resolveExporterKind: option, then the traces protocol, then the general protocol, then http/protobuf', (t) => {
  t.is(resolveExporterKind(undefined, {}), 'otlp-proto');
  t.is(resolveExporterKind(undefined, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), 'otlp-grpc');
  t.is(resolveExporterKind(undefined, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), 'otlp-http');
  t.is(
    resolveExporterKind(undefined, {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
    }),
    'otlp-proto',
  );
  t.is(resolveExporterKind(undefined, { OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' }), 'otlp-proto');
  t.is(resolveExporterKind('jsonl', { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), 'jsonl');
});

test('every exporter kind can be built; jsonl without a file is refused', async (t) => {
  for (const kind of ['otlp-proto', 'otlp-http', 'otlp-grpc'] as const) {
    const exporter = await createSpanExporter(kind, { endpoint: 'http://127.0.0.1:1/v1/traces' });
    t.truthy(exporter, kind);
    await exporter?.shutdown();
  }
  t.is(await createSpanExporter('none', {}), undefined);
  await t.throwsAsync(() => createSpanExporter('jsonl', {}), { message: /needs options.file/ });
});

test('JSON-lines format: exact ids, ns times as strings, typed attributes, status, resource, scope', async (t) => {
  const file = tmpFile();
  const exporter = new JsonLinesSpanExporter(file);
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('scope-x', '9.9');
  const root = tracer.startSpan('request', { startTime: [1_700_000_000, 123_456_789] });
  root.setAttributes({ hit_tokens: 512, hit_rate: 0.5, session_id: 's', ok: true, list: [1, 2] });
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'why' });
  root.end([1_700_000_001, 1]);
  await provider.shutdown();
  const line = JSON.parse(readFileSync(file, 'utf8').trim());
  t.deepEqual(Object.keys(line).sort(), [
    'attributes',
    'droppedAttributesCount',
    'endTimeUnixNano',
    'events',
    'kind',
    'links',
    'name',
    'resource',
    'scope',
    'spanId',
    'startTimeUnixNano',
    'status',
    'traceFlags',
    'traceId',
    'v',
  ]);
  t.is(line.startTimeUnixNano, '1700000000123456789');
  t.is(line.endTimeUnixNano, '1700000001000000001');
  t.deepEqual(line.attributes, { hit_tokens: 512, hit_rate: 0.5, session_id: 's', ok: true, list: [1, 2] });
  t.deepEqual(line.status, { code: 'ERROR', message: 'why' });
  t.deepEqual(line.scope, { name: 'scope-x', version: '9.9' });
  t.is(line.kind, 'internal');
  t.regex(line.traceId, /^[0-9a-f]{32}$/);
  t.regex(line.spanId, /^[0-9a-f]{16}$/);
  const [record] = await readSpanFile(file);
  t.is(record.startTimeUnixNano, 1_700_000_000_123_456_789n);
  t.is(record.parentSpanId, undefined);
  t.is(record.spanId, root.spanContext().spanId);
});

test('the hand-assembled line equals the record object stringified, across awkward spans', async (t) => {
  const { InMemorySpanExporter } = await import('@opentelemetry/sdk-trace-base');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const { TraceState } = await import('@opentelemetry/core');
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'kvmp', 'odd "key"': 'line\nbreak', gone: undefined }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('scope "q"');
  const parent = {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    isRemote: true,
    traceState: new TraceState('vendor=a,other=b'),
  };
  const { trace, ROOT_CONTEXT } = await import('@opentelemetry/api');
  const child = tracer.startSpan(
    'name with "quotes" and ünïcode',
    { startTime: [5, 7], links: [{ context: parent, attributes: { why: 'link' } }] },
    trace.setSpanContext(ROOT_CONTEXT, parent),
  );
  child.setAttributes({ s: 'tab\t"q"', n: 1.5, big: 2 ** 60, neg: -0, ok: false, arr: ['a', 'b'], nums: [1, 2] });
  child.setAttribute('nan', Number.NaN);
  child.setAttributes({
    ключ: 'значение',
    emoji: 'rocket 🚀',
    lone: '\ud800x',
    del: 'a\x7fb',
    'ctl\u0001key': '\u0000\u001f',
    inf: Number.POSITIVE_INFINITY,
    huge: 1e21,
    tiny: 5e-7,
    withNull: ['x', null as unknown as string],
  });
  child.addEvent('evt', { at: 1 }, [1_700_000_000, 5]);
  child.addEvent('bare', undefined, [0, 999]);
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'bad "thing"' });
  child.end([1_700_000_000, 999_999_999]);
  const plain = tracer.startSpan('plain', { startTime: [1_700_000_000, 0] });
  plain.end([1_700_000_000, 1]);
  const spans = memory.getFinishedSpans();
  t.is(spans.length, 2);
  for (const span of spans) t.is(spanToJsonLine(span), JSON.stringify(spanToRecordObject(span)));
  const record = JSON.parse(spanToJsonLine(spans[0]));
  t.is(record.parentSpanId, parent.spanId);
  t.is(record.traceState, 'vendor=a,other=b');
  t.is(record.startTimeUnixNano, '5000000007');
  t.is(record.events[1].timeUnixNano, '999');
  t.deepEqual(record.resource, { 'service.name': 'kvmp', 'odd "key"': 'line\nbreak' });
  await provider.shutdown();
});

test('JSON-lines exporter: batches larger than its buffer and multi-byte text are written whole', async (t) => {
  const file = tmpFile();
  const exporter = new JsonLinesSpanExporter(file);
  const { BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const provider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 1000, scheduledDelayMillis: 10 })],
  });
  const tracer = provider.getTracer('t');
  const big = 'ü€'.repeat(60_000); // 300 KB of UTF-8: one line larger than the whole buffer
  for (let i = 0; i < 900; i++) {
    const span = tracer.startSpan(`s${i}`, { startTime: [1, i] });
    span.setAttribute('text', i === 450 ? big : `ñ-${i}`);
    span.end([2, i]);
  }
  await provider.shutdown();
  const records = await readSpanFile(file);
  t.is(records.length, 900);
  t.deepEqual(
    records.map((r) => r.name),
    Array.from({ length: 900 }, (_, i) => `s${i}`),
  );
  t.is(records[450].attributes.text, big);
  t.is(records[899].attributes.text, 'ñ-899');
});

test('readSpanFile names the line of a malformed record', async (t) => {
  const file = tmpFile();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    file,
    '\n{"v":1,"traceId":"a","spanId":"b","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2","events":[]}\nnot json\n',
  );
  await t.throwsAsync(() => readSpanFile(file), { message: /:3: / });
});

test('jsonl through the pipeline: a tree read back after stop(); a store without END is ended at shutdown as leaked', async (t) => {
  const file = tmpFile();
  const statsName = uniqueChannel('jsonl-stats');
  const stats = listen<RequestTracingStatsMessage>(statsName);
  const pipeline = new EventPipeline({
    subscribers: [requestTracingSubscriber({ exporter: 'jsonl', file, statsChannel: statsName })],
  });
  await pipeline.start();
  publishRequest(pipeline, 'ok');
  publishRequest(pipeline, 'stuck', { dropStoreEnd: true });
  await pipeline.stop();
  const final = await stats.next((m) => m.kind === 'shutdown');
  stats.close();

  const spans = await readSpanFile(file);
  t.is(spans.length, 6);
  const root = (sid: string) => spans.find((s) => s.name === 'request' && s.attributes.session_id === sid);
  const ok = root('ok');
  const stuck = root('stuck');
  t.is(ok?.status.code, 'UNSET');
  t.is(ok?.resource['service.name'], 'kvmp');
  t.is(ok?.attributes.hit_rate, 1);
  t.is(ok?.attributes.requested_tokens, 100);
  for (const s of spans.filter((x) => x.name !== 'request')) {
    t.is(s.parentSpanId, root(String(s.attributes.session_id))?.spanId);
    t.true(s.endTimeUnixNano >= s.startTimeUnixNano);
  }
  t.is(stuck?.status.code, 'ERROR');
  t.is(stuck?.attributes['kvmp.leaked'], true);
  t.is(stuck?.attributes['kvmp.leak_reason'], 'shutdown');
  const stuckStore = spans.find((s) => s.name === 'mp.store' && s.attributes.session_id === 'stuck');
  t.is(stuckStore?.attributes['kvmp.leaked'], true);
  t.is(final.stats.leakedSpans, 2);
  t.is(final.stats.leakedByReason.shutdown, 2);
});

test('the periodic sweep ends a request whose store END never came, with ERROR and kvmp.leaked', async (t) => {
  const file = tmpFile();
  const statsName = uniqueChannel('sweep-stats');
  const stats = listen<RequestTracingStatsMessage>(statsName);
  const pipeline = new EventPipeline({
    periodicIntervalMs: 20,
    subscribers: [
      requestTracingSubscriber({ exporter: 'jsonl', file, statsChannel: statsName, ttlMs: 1, sweepIntervalMs: 1 }),
    ],
  });
  // Published before the drain starts, so its first pass sees all three: a sweep can never
  // fall between them.
  const pub = pipeline.publisher;
  pub.publish('MP_REQUEST_START', 'underflow', {});
  pub.publish('MP_RETRIEVE_SUBMITTED', 'underflow', { device: 'cuda:0' }, { opId: 9 });
  pub.publish('MP_REQUEST_END', 'underflow', {});
  await pipeline.start();
  const swept = await stats.next((m) => m.kind === 'sweep' && m.stats.leakedSpans > 0);
  await pipeline.stop();
  stats.close();
  t.is(swept.stats.leakedByReason.in_flight_end_missing, 1);
  t.is(swept.stats.openSpans, 0);
  const [root] = await readSpanFile(file);
  t.is(root.name, 'request');
  t.is(root.attributes['kvmp.leak_reason'], 'in_flight_end_missing');
  t.is(root.status.code, 'ERROR');
});

test('sampler option always_off: spans are created but none exported', async (t) => {
  const file = tmpFile();
  const pipeline = new EventPipeline({
    subscribers: [requestTracingSubscriber({ exporter: 'jsonl', file, sampler: { type: 'always_off' } })],
  });
  await pipeline.start();
  publishRequest(pipeline, 'x');
  await pipeline.stop();
  t.deepEqual(await readSpanFile(file), []);
});
