import type { SpanExporterKind } from './exporter-options.js';

type Env = Readonly<Record<string, string | undefined>>;

const BY_PROTOCOL: Readonly<Record<string, SpanExporterKind>> = {
  'http/protobuf': 'otlp-proto',
  'http/json': 'otlp-http',
  grpc: 'otlp-grpc',
};

/**
 * The exporter to build: the explicit option, else the OTLP protocol env vars (the
 * signal-specific one first, as the OTLP spec orders them), else OTLP http/protobuf.
 * An unknown protocol falls back to the default rather than failing the drain thread.
 */
export function resolveExporterKind(explicit: SpanExporterKind | undefined, env: Env = process.env): SpanExporterKind {
  if (explicit !== undefined) return explicit;
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim().toLowerCase();
  return (protocol !== undefined ? BY_PROTOCOL[protocol] : undefined) ?? 'otlp-proto';
}
