import type { SubscriberSpec } from '../drain/subscriber.js';
import type { RequestTracingOptions } from './request-tracing-options.js';

/**
 * The declaration to pass to `new EventPipeline({ subscribers: [...] })`: one root span per
 * request with its operations nested under it, exported from the drain thread.
 *
 * @example
 * new EventPipeline({ subscribers: [requestTracingSubscriber({ exporter: 'jsonl', file: '/tmp/spans.jsonl' })] })
 */
export function requestTracingSubscriber(options: RequestTracingOptions = {}): SubscriberSpec {
  return {
    module: new URL('./request-tracing-subscriber.js', import.meta.url).href,
    export: 'createRequestTracingSubscriber',
    options,
  };
}
