import type { SubscriberSpec } from '../drain/subscriber.js';
import type { EventPipeline } from '../pipeline/event-pipeline.js';
import { METRICS_SUBSCRIBER_NAME, type MetricsOptions } from './metrics-options.js';

/**
 * The declaration of the metrics subscriber. It loads before the other subscribers so that
 * the drain thread's MeterProvider exists when they create their instruments.
 */
export function metricsSubscriber(options: MetricsOptions = {}): SubscriberSpec {
  return {
    module: new URL('./metrics-subscriber.js', import.meta.url).href,
    export: 'createMetricsSubscriber',
    options,
    loadOrder: -100,
  };
}

/** Prometheus text exposition (format 0.0.4) of every kvmp metric, for an HTTP `/metrics`. */
export async function scrapeMetrics(pipeline: EventPipeline): Promise<string> {
  return (await pipeline.query(METRICS_SUBSCRIBER_NAME, { format: 'prometheus' })) as string;
}

/** Content-Type of {@link scrapeMetrics}'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
