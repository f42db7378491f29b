/**
 * Standard OTel env vars on the drain thread: endpoint, protocol, service name and resource
 * attributes, exported over OTLP http/json to TestCollector. Its own file (ava runs each
 * file in its own process) because it sets process.env.
 */
import { TestCollector } from '@opentelemetry/contrib-test-utils';
import test from 'ava';
import { EventPipeline, requestTracingSubscriber } from '../src/index.js';

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

function publishRequest(pipeline: EventPipeline, sid: string): void {
  const pub = pipeline.publisher;
  pub.publish('MP_REQUEST_START', sid, { model_name: 'm' });
  pub.publish('MP_LOOKUP_PREFETCH_START', sid, {}, { opId: 1 });
  pub.publish('MP_LOOKUP_PREFETCH_END', sid, LP_END, { opId: 1 });
  pub.publish('MP_STORE_SUBMITTED', sid, { device: 'cuda:0' }, { opId: 2 });
  pub.publish('MP_REQUEST_END', sid, {});
  pub.publish('MP_STORE_START', sid, { device: 'cuda:0', engine_id: 'e', model_name: 'm' }, { opId: 2 });
  const meta = { device: 'cuda:0', engine_id: 'e', model_name: 'm', stored_count: 1, total_bytes: 10, num_tokens: 16 };
  pub.publish('MP_STORE_END', sid, { ...meta, success: true }, { opId: 2 });
}

test('env vars pick the OTLP http/json exporter, endpoint, service name and resource attributes', async (t) => {
  const collector = new TestCollector();
  await collector.start();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.endpointUrl;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  process.env.OTEL_SERVICE_NAME = 'kvmp-from-env';
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment=test,service.name=overridden-by-OTEL_SERVICE_NAME';
  // The drain thread copies process.env when it is spawned.
  const pipeline = new EventPipeline({ subscribers: [requestTracingSubscriber()] });
  await pipeline.start();
  publishRequest(pipeline, 'json-1');
  await pipeline.stop();
  collector.close();

  const spans = collector.sortedSpans;
  t.deepEqual(
    spans.map((s) => s.name),
    ['request', 'mp.lookup_prefetch', 'mp.store'],
  );
  const [root, lp, store] = spans;
  t.is(lp.parentSpanId, root.spanId);
  t.is(store.parentSpanId, root.spanId);
  const resource = Object.fromEntries(root.resource.attributes.map((a) => [a.key, a.value]));
  t.deepEqual(resource['service.name'], { stringValue: 'kvmp-from-env' });
  t.deepEqual(resource['deployment.environment'], { stringValue: 'test' });
  t.truthy(resource['service.instance.id']?.stringValue, 'a random instance id by default');
  const attrs = Object.fromEntries(root.attributes.map((a) => [a.key, a.value]));
  t.deepEqual(attrs.hit_tokens, { intValue: 100 });
  t.deepEqual(attrs.l1_hit_rate, { doubleValue: 0.6 });
  t.deepEqual(attrs.session_id, { stringValue: 'json-1' });
  t.is(root.endTimeUnixNano < store.endTimeUnixNano || root.endTimeUnixNano === store.endTimeUnixNano, true);
});
