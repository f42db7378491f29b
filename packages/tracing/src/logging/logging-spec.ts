import type { SubscriberSpec } from '../drain/subscriber.js';
import type { LoggingOptions } from './logging-options.js';

/** The declaration of the logging subscriber (pino JSON lines from the drain thread). */
export function loggingSubscriber(options: LoggingOptions = {}): SubscriberSpec {
  return {
    module: new URL('./logging-subscriber.js', import.meta.url).href,
    export: 'createLoggingSubscriber',
    options,
  };
}
