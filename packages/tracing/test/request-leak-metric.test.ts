/**
 * The leaked-span counter reaches Prometheus through the metrics subscriber's MeterProvider
 * on the drain thread.
 */
import test from 'ava';
import {
  EventPipeline,
  metricsSubscriber,
  type RequestTracingStatsMessage,
  requestTracingSubscriber,
  scrapeMetrics,
} from '../src/index.js';
import { listen, uniqueChannel } from './fixtures/broadcast.js';

test('kvmp.tracing.leaked_spans counts swept spans by reason', async (t) => {
  const statsName = uniqueChannel('leak-metric');
  const stats = listen<RequestTracingStatsMessage>(statsName);
  const pipeline = new EventPipeline({
    periodicIntervalMs: 20,
    subscribers: [
      // The counter is resolved against the drain thread's current global MeterProvider.
      requestTracingSubscriber({ exporter: 'none', ttlMs: 1, sweepIntervalMs: 1, statsChannel: statsName }),
      metricsSubscriber(),
    ],
  });
  // Published before the drain starts, so its first pass sees all three: a sweep can never
  // fall between them.
  const pub = pipeline.publisher;
  pub.publish('MP_REQUEST_START', 'leaky', {});
  pub.publish('MP_STORE_SUBMITTED', 'leaky', { device: 'cuda:0' }, { opId: 1 });
  pub.publish('MP_REQUEST_END', 'leaky', {});
  await pipeline.start();
  await stats.next((m) => m.kind === 'sweep' && m.stats.leakedSpans === 1);
  const text = await scrapeMetrics(pipeline);
  await pipeline.stop();
  stats.close();
  const line = text.split('\n').find((l) => l.startsWith('kvmp_tracing_leaked_spans') && l.includes('reason='));
  t.regex(text, /^kvmp_tracing_leaked_spans_total\{otel_scope_name[^}]*\} 0$/m, 'the zero series from start-up');
  t.truthy(line, text);
  t.regex(line ?? '', /reason="in_flight_end_missing"/);
  t.regex(line ?? '', /span_name="request"/);
  t.regex(line ?? '', / 1$/);
});
