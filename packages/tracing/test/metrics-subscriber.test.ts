import test from 'ava';
import { EventPipeline, metricsSubscriber, scrapeMetrics } from '../src/index.js';
import { parsePrometheus, value } from './prometheus-text.js';

const copy = { device: 'cpu', engine_id: 'engine-0', model_name: 'llama' };

test('cache metrics follow the events: lookups, transfers, in-flight, throughput, L1', async (t) => {
  const pipeline = new EventPipeline({ subscribers: [metricsSubscriber()] });
  t.teardown(() => pipeline.stop());
  await pipeline.start();
  const pub = pipeline.publisher;
  const lookup = (hit: number, l2: number, exit = '') =>
    pub.publish('MP_LOOKUP_PREFETCH_END', 's', {
      found_count: hit / 256,
      requested_tokens: exit === '' ? 1024 : 0,
      hit_tokens: hit,
      l1_hit_tokens: hit - l2,
      l2_hit_tokens: l2,
      l1_hit_keys: 0,
      l2_hit_keys: 0,
      early_exit_reason: exit,
      model_name: 'llama',
    });
  lookup(512, 256);
  lookup(1024, 0);
  lookup(0, 0, 'no_gpu_context');
  pub.publish('MP_STORE_SUBMITTED', 's', { device: 'cpu' }, { opId: 1 });
  pub.publish('MP_STORE_SUBMITTED', 's', { device: 'cpu' }, { opId: 2 });
  pub.publish('MP_STORE_START', 's', copy, { opId: 1, workerId: 0, time: [1_800_000_000, 0] });
  pub.publish(
    'MP_STORE_END',
    's',
    { ...copy, stored_count: 4, total_bytes: 4e9, num_tokens: 1024, success: true },
    { opId: 1, workerId: 0, time: [1_800_000_000, 500_000_000] },
  );
  pub.publish('MP_RETRIEVE_SUBMITTED', 's', { device: 'cpu' }, { opId: 3 });
  pub.publish('MP_RETRIEVE_START', 's', copy, { opId: 3, workerId: 0 });
  pub.publish(
    'MP_RETRIEVE_END',
    's',
    { ...copy, retrieved_count: 0, total_bytes: 0, num_tokens: 0, success: false, error: 'lock expired' },
    { opId: 3, workerId: 0 },
  );
  pub.publish('L1_USAGE', '', { used_bytes: 300, capacity_bytes: 1200, object_count: 3 });
  pub.publish('L1_KEYS_EVICTED', '', { key_count: 2, total_bytes: 64 });
  pub.publish('L1_ALLOCATION_FAILED', 's', { during: 'l1_store', key_count: 5, requested_bytes: 160 });
  pub.publish('L1_READ_FAILED', 's', { during: 'l1_retrieve', reason: 'not_found', key_count: 1 });

  // Scrape once every event so far was delivered (the drain is asynchronous to publish; a
  // query runs between events, so delivered = 14 means all 14 were handled).
  let samples = parsePrometheus(await scrapeMetrics(pipeline));
  for (let i = 0; i < 500 && value(samples, 'kvmp_events_delivered_total') !== 14; i++) {
    await new Promise((r) => setTimeout(r, 10));
    samples = parsePrometheus(await scrapeMetrics(pipeline));
  }
  const v = (name: string, labels: Record<string, string> = {}) => value(samples, name, labels);
  t.is(v('kvmp_lookup_requests_total'), 3);
  t.is(v('kvmp_lookup_early_exits_total', { reason: 'no_gpu_context' }), 1);
  t.is(v('kvmp_lookup_requested_tokens_total', { model_name: 'llama' }), 2048, 'early exits add 0');
  t.is(v('kvmp_lookup_hit_tokens_total'), 1536);
  t.is(v('kvmp_lookup_l1_hit_tokens_total'), 1280);
  t.is(v('kvmp_lookup_l2_hit_tokens_total'), 256);
  t.is(v('kvmp_transfer_submitted_total', { direction: 'store', device: 'cpu' }), 2);
  t.is(v('kvmp_transfer_finished_total', { direction: 'store', outcome: 'ok' }), 1);
  t.is(v('kvmp_transfer_finished_total', { direction: 'retrieve', outcome: 'error' }), 1);
  t.is(v('kvmp_transfer_in_flight', { direction: 'store' }), 1, 'one store submitted and not finished');
  t.is(v('kvmp_transfer_in_flight', { direction: 'retrieve' }), 0);
  t.is(v('kvmp_transfer_chunks_total', { direction: 'store' }), 4);
  t.is(v('kvmp_transfer_bytes_total', { direction: 'store' }), 4e9);
  t.is(v('kvmp_transfer_throughput_gb_per_second_count', { direction: 'store' }), 1);
  t.is(v('kvmp_transfer_throughput_gb_per_second_sum', { direction: 'store' }), 8, '4 GB in 0.5 s on the stream clock');
  t.is(v('kvmp_transfer_duration_seconds_sum', { direction: 'store' }), 0.5);
  t.is(
    v('kvmp_transfer_throughput_gb_per_second_count', { direction: 'retrieve' }),
    undefined,
    'failed copies are not timed',
  );
  t.is(v('kvmp_l1_usage_bytes'), 300);
  t.is(v('kvmp_l1_usage_ratio'), 0.25);
  t.is(v('kvmp_l1_evicted_chunks_total'), 2);
  t.is(v('kvmp_l1_allocation_failures_total', { during: 'l1_store' }), 5);
  t.is(v('kvmp_l1_read_failures_total', { reason: 'not_found' }), 1);
  t.is(v('kvmp_events_delivered_total'), 14);
  t.is(v('kvmp_events_dropped_total'), 0);
  t.is(v('kvmp_events_subscriber_exceptions_total', { subscriber: 'metrics' }), 0);
  if (process.platform === 'linux') {
    // The drain thread has done real work by now; its CPU time is seconds, not ns or ticks.
    const cpu = v('kvmp_events_drain_cpu_seconds_total') ?? 0;
    t.true(cpu > 0 && cpu < 60, `drain cpu ${cpu} s`);
    t.true((v('kvmp_events_drain_run_queue_wait_seconds_total') ?? -1) >= 0);
  }
  t.truthy(samples.find((s) => s.name === 'target_info' && s.labels.service_name === 'kvmp'));
  await pipeline.stop();
  await t.throwsAsync(scrapeMetrics(pipeline), { message: /not running/ });
});

test('scraping a pipeline without the metrics subscriber fails clearly', async (t) => {
  const pipeline = new EventPipeline();
  t.teardown(() => pipeline.stop());
  await pipeline.start();
  await t.throwsAsync(scrapeMetrics(pipeline), { message: "no subscriber 'metrics' answers queries" });
  await pipeline.stop();
});

test('a scrape sees every event published before it, however long the drain naps', async (t) => {
  // Naps of up to a second: without catching up first, the scrape would answer before the
  // drain woke to count the lookup.
  const pipeline = new EventPipeline({ subscribers: [metricsSubscriber()], napMs: 1000, maxNapMs: 1000 });
  t.teardown(() => pipeline.stop());
  await pipeline.start();
  await new Promise((r) => setTimeout(r, 50)); // the drain finds the ring empty and naps
  pipeline.publisher.publish('MP_LOOKUP_PREFETCH_END', 's', {
    found_count: 1,
    requested_tokens: 256,
    hit_tokens: 256,
    l1_hit_tokens: 256,
    l2_hit_tokens: 0,
    l1_hit_keys: 1,
    l2_hit_keys: 0,
    early_exit_reason: '',
    model_name: 'llama',
  });
  const samples = parsePrometheus(await scrapeMetrics(pipeline));
  t.is(value(samples, 'kvmp_lookup_hit_tokens_total', { model_name: 'llama' }), 256);
});
