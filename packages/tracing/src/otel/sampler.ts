import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { SamplerOptions } from './exporter-options.js';

/**
 * A sampler from options, or `undefined` to let the SDK read `OTEL_TRACES_SAMPLER[_ARG]`
 * (its default is parent-based always-on: an unsampled remote parent exports nothing).
 */
export function buildSampler(options: SamplerOptions | undefined): Sampler | undefined {
  if (options === undefined) return undefined;
  const ratio = Math.min(1, Math.max(0, options.ratio ?? 1));
  switch (options.type) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}
