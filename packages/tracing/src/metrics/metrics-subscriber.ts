/**
 * The metrics subscriber's factory. Runs on the drain thread: it owns the thread's
 * MeterProvider (installed globally there, so other drain-thread subscribers such as request
 * tracing record through it) and answers Prometheus scrapes via `pipeline.query`.
 */
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { Subscriber, SubscriberFactory } from '../drain/subscriber.js';
import { buildResource } from '../otel/resource.js';
import { KvMetrics, METRICS_EVENT_TYPES } from './kv-metrics.js';
import { METRICS_SUBSCRIBER_NAME, type MetricsOptions } from './metrics-options.js';
import { registerPipelineMetrics } from './pipeline-metrics.js';

/** What `pipeline.query('metrics', …)` understands. */
export type MetricsQuery = { readonly format: 'prometheus' };

export const createMetricsSubscriber: SubscriberFactory<MetricsOptions | undefined> = (options, context) => {
  const opts = options ?? {};
  // Pull-only reader: kvmp's own HTTP server serves /metrics (bound where the operator chose),
  // so the exporter never opens a port of its own.
  const reader = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ resource: buildResource(opts), readers: [reader] });
  metrics.setGlobalMeterProvider(provider);
  const meter = provider.getMeter('kvmp');
  const kv = new KvMetrics(meter, opts);
  registerPipelineMetrics(meter, () => context.selfMetrics());
  const serializer = new PrometheusSerializer();

  context.onFlush(async () => {
    await provider.shutdown();
  });

  const subscriber: Subscriber = {
    name: METRICS_SUBSCRIBER_NAME,
    types: METRICS_EVENT_TYPES,
    onEvent: (event) => kv.onEvent(event),
    onPeriodic: (nowNs) => kv.sweep(nowNs),
    async onQuery(request) {
      if ((request as MetricsQuery | undefined)?.format !== 'prometheus') {
        throw new Error("metrics query: expected { format: 'prometheus' }");
      }
      const { resourceMetrics, errors } = await reader.collect();
      for (const err of errors) context.log.warn('metrics collection error', { error: String(err) });
      return serializer.serialize(resourceMetrics);
    },
  };
  return subscriber;
};

export default createMetricsSubscriber;
