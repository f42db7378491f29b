import { randomUUID } from 'node:crypto';
import { detectResources, envDetector, type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { SpanExportOptions } from './exporter-options.js';

/** `service.instance.id` is not in the stable semantic conventions export of 1.45. */
export const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id';

const processInstanceId = randomUUID();

/**
 * The process identity every span carries. Precedence, lowest first: kvmp defaults
 * (`service.name=kvmp`, a random `service.instance.id` per process), then
 * `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME` (both via the SDK's env detector),
 * then explicit options, which are the most specific statement of intent.
 */
export function buildResource(options: SpanExportOptions): Resource {
  const defaults = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: 'kvmp',
    [ATTR_SERVICE_INSTANCE_ID]: processInstanceId,
  });
  const fromEnv = detectResources({ detectors: [envDetector] });
  const explicit: Record<string, string | number | boolean> = { ...options.resourceAttributes };
  if (options.serviceName !== undefined) explicit[ATTR_SERVICE_NAME] = options.serviceName;
  if (options.serviceInstanceId !== undefined) explicit[ATTR_SERVICE_INSTANCE_ID] = options.serviceInstanceId;
  return defaults.merge(fromEnv).merge(resourceFromAttributes(explicit));
}
