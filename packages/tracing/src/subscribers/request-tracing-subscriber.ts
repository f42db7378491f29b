/**
 * The request tracing subscriber's factory. Runs on the drain thread only: it is loaded
 * there by module URL (see `requestTracingSubscriber`) and owns the thread's OTel SDK.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { getSpanRegistry } from '@kvmp/registry';
import { type Counter, type MeterProvider, metrics } from '@opentelemetry/api';
import type { Subscriber, SubscriberFactory } from '../drain/subscriber.js';
import { createDrainTracing, TRACER_NAME, TRACER_VERSION } from '../otel/drain-tracer-provider.js';
import { RecentTraces } from '../viewer/recent-traces.js';
import { LEAKED_SPANS_METRIC } from './leaked-spans-metric.js';
import { REQUEST_TRACING_EVENT_TYPES } from './request-span-names.js';
import { RequestSpanTracker } from './request-span-tracker.js';
import type { RequestTracingOptions } from './request-tracing-options.js';
import { REQUEST_TRACING_SUBSCRIBER_NAME, type TracesQuery } from './request-tracing-query.js';
import type { RequestTracingStatsMessage } from './request-tracing-stats.js';

/**
 * The leaked-span counter on the drain thread's *current* global MeterProvider. The metrics
 * subscriber may install its provider after this factory ran (subscribers load in declaration
 * order) and the metrics API has no proxy provider, so the counter is re-resolved when the
 * global provider changes. Leaks are rare; the check is one comparison.
 */
function leakedSpansCounter(): () => Counter {
  let provider: MeterProvider | undefined;
  let counter: Counter | undefined;
  return () => {
    const current = metrics.getMeterProvider();
    if (counter === undefined || current !== provider) {
      provider = current;
      counter = current.getMeter(TRACER_NAME, TRACER_VERSION).createCounter(LEAKED_SPANS_METRIC, {
        description: 'Spans kvmp ended itself (ERROR, kvmp.leaked=true) because their END never came',
        unit: '{span}',
      });
    }
    return counter;
  };
}

export const createRequestTracingSubscriber: SubscriberFactory<RequestTracingOptions | undefined> = async (
  options,
  context,
) => {
  const opts = options ?? {};
  const keep = opts.viewerTraces ?? 200;
  const recent = keep > 0 ? new RecentTraces(keep) : undefined;
  const tracing = await createDrainTracing(opts, recent === undefined ? [] : [recent]);
  const leaked = leakedSpansCounter();
  // The series exists from the start (at 0), so dashboards and alerts see "no leaks", not "no data".
  leaked().add(0);
  const tracker = new RequestSpanTracker({
    tracer: tracing.tracer,
    registry: getSpanRegistry(),
    ttlMs: opts.ttlMs,
    maxClosedSessions: opts.maxClosedSessions,
    onLeak: (reason, spanName) => leaked().add(1, { reason, span_name: spanName }),
    debug: (message, fields) => context.log.debug(message, fields),
  });
  const sweepIntervalNs = (opts.sweepIntervalMs ?? 30_000) * 1e6;
  let lastSweepNs = 0;

  const report = (kind: RequestTracingStatsMessage['kind']): void => {
    if (opts.statsChannel === undefined) return;
    const channel = new BroadcastChannel(opts.statsChannel);
    channel.postMessage({ kind, stats: tracker.stats() } satisfies RequestTracingStatsMessage);
    channel.close();
  };

  // Runs after every subscriber's shutdown, so spans other subscribers end then are exported too.
  context.onFlush(async () => {
    await tracing.shutdown();
    report('shutdown');
  });

  const subscriber: Subscriber = {
    name: REQUEST_TRACING_SUBSCRIBER_NAME,
    types: REQUEST_TRACING_EVENT_TYPES,
    onEvent: (event) => tracker.onEvent(event),
    onPeriodic(nowNs) {
      if (lastSweepNs === 0) lastSweepNs = nowNs;
      if (nowNs - lastSweepNs < sweepIntervalNs) return;
      lastSweepNs = nowNs;
      tracker.sweep(nowNs);
      report('sweep');
    },
    shutdown() {
      tracker.shutdown();
    },
    onQuery(request) {
      const q = request as TracesQuery | undefined;
      if (q?.kind !== 'traces') throw new Error("request-tracing query: expected { kind: 'traces' }");
      return recent?.list(q.limit) ?? [];
    },
  };
  return subscriber;
};

export default createRequestTracingSubscriber;
