import type { SpanExporterKind } from '@kvmp/tracing';

/** Everything `kvmp serve` needs, resolved from flags, `KVMP_*` and `OTEL_*` variables. */
export interface ServeConfig {
  /** ZMQ endpoint to bind: `tcp://host:port` or `ipc:///path`. */
  readonly endpoint: string;
  readonly chunkSize: number;
  readonly l1Bytes: number;
  readonly evictionPolicy: 'LRU';
  readonly evictionWatermark: number;
  readonly evictionRatio: number;
  readonly readTtlMs: number;
  readonly writeTtlMs: number;
  readonly sessionTtlMs: number;
  readonly device: 'cpu' | 'cuda';
  readonly cudaDevice: number;
  readonly hashThreads: number | undefined;
  readonly maxMessageBytes: number;
  readonly stagingChunks: number | undefined;
  readonly http: { readonly host: string; readonly port: number } | undefined;
  readonly metrics: boolean;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  readonly eventLogging: boolean;
  readonly tracing:
    | {
        readonly exporter: SpanExporterKind;
        /** Undefined: the exporter reads `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` itself. */
        readonly endpoint: string | undefined;
        readonly file: string | undefined;
      }
    | undefined;
  readonly serviceInstanceId: string | undefined;
  readonly eventRingCapacity: number | undefined;
  /** Finished request trees kept for the built-in viewer (/traces, kvmp trace); 0 turns it off. */
  readonly viewerTraces: number;
  /** Run a demo engine workload against the server (a child process). */
  readonly demo: boolean;
  /** With `demo`: requests the demo runs before it exits (the server keeps running); default: until stopped. */
  readonly demoSessions: number | undefined;
}

/** Flag values as commander hands them over (strings, numbers after parsing, booleans). */
export interface ServeFlags {
  readonly host: string;
  readonly port: number;
  readonly ipc?: string;
  readonly chunkSize: number;
  readonly l1SizeGb: number;
  readonly evictionPolicy: string;
  readonly evictionTriggerWatermark: number;
  readonly evictionRatio: number;
  readonly l1ReadTtlSeconds: number;
  readonly l1WriteTtlSeconds: number;
  readonly sessionTtlSeconds: number;
  readonly device: string;
  readonly cudaDevice: number;
  readonly hashThreads?: number;
  readonly maxMessageMb: number;
  readonly engineStagingChunks?: number;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly http: boolean;
  readonly metrics: boolean;
  readonly logLevel: string;
  readonly eventLogging: boolean;
  readonly enableTracing: boolean;
  readonly otlpEndpoint?: string;
  readonly otlpProtocol?: string;
  readonly traceFile?: string;
  readonly serviceInstanceId?: string;
  readonly eventRingCapacity?: number;
  readonly viewerTraces?: number;
  readonly demo: boolean;
  readonly demoSessions?: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const PROTOCOLS: Readonly<Record<string, SpanExporterKind>> = {
  'http/protobuf': 'otlp-proto',
  'http/json': 'otlp-http',
  grpc: 'otlp-grpc',
};

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The OTLP traces URL for an endpoint given as a base (`http://collector:4318`, as in the
 * anchor's `--otlp-endpoint` and `OTEL_EXPORTER_OTLP_ENDPOINT`): HTTP exporters need the
 * signal path; gRPC takes the base as is.
 */
export function tracesUrl(base: string, exporter: SpanExporterKind): string {
  if (exporter === 'otlp-grpc') return base;
  const url = new URL(base);
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/v1/traces';
  return url.toString();
}

/** An environment variable, with the empty string treated as unset (as the OTel spec says). */
function envVar(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

export function resolveServeConfig(f: ServeFlags, env: Env = process.env): ServeConfig {
  const policy = f.evictionPolicy.toUpperCase();
  if (policy !== 'LRU') throw new ConfigError(`--eviction-policy ${f.evictionPolicy}: only LRU is implemented`);
  if (f.device !== 'cpu' && f.device !== 'cuda') throw new ConfigError('--device must be cpu or cuda');
  if (!(f.l1SizeGb > 0)) throw new ConfigError('--l1-size-gb must be positive');
  if (!(f.maxMessageMb > 0)) throw new ConfigError('--max-message-mb must be positive');
  if (!(f.evictionTriggerWatermark > 0 && f.evictionTriggerWatermark <= 1)) {
    throw new ConfigError('--eviction-trigger-watermark must be in (0, 1]');
  }
  if (!(f.evictionRatio > 0 && f.evictionRatio <= 1)) throw new ConfigError('--eviction-ratio must be in (0, 1]');
  const level = f.logLevel.toLowerCase();
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level)) {
    throw new ConfigError('--log-level must be debug, info, warn, error or silent');
  }

  let tracing: ServeConfig['tracing'];
  const sdkDisabled = envVar(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true';
  const envExporterNone = envVar(env, 'OTEL_TRACES_EXPORTER')?.toLowerCase() === 'none';
  if (f.enableTracing && !sdkDisabled && !envExporterNone) {
    const protocol = (
      f.otlpProtocol ??
      envVar(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ??
      envVar(env, 'OTEL_EXPORTER_OTLP_PROTOCOL')
    )?.toLowerCase();
    if (f.traceFile !== undefined) {
      tracing = { exporter: 'jsonl', endpoint: undefined, file: f.traceFile };
    } else {
      const exporter = protocol === undefined ? 'otlp-proto' : PROTOCOLS[protocol];
      if (exporter === undefined) {
        throw new ConfigError(`--otlp-protocol ${protocol}: use http/protobuf, http/json or grpc`);
      }
      const envEndpoint =
        envVar(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? envVar(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
      if (f.otlpEndpoint === undefined && envEndpoint === undefined) {
        throw new ConfigError(
          '--enable-tracing needs --otlp-endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT), or --trace-file for JSON lines',
        );
      }
      let endpoint: string | undefined;
      try {
        endpoint = f.otlpEndpoint === undefined ? undefined : tracesUrl(f.otlpEndpoint, exporter);
      } catch {
        throw new ConfigError('--otlp-endpoint must be a URL such as http://127.0.0.1:4318');
      }
      tracing = { exporter, endpoint, file: undefined };
    }
  }

  return {
    endpoint: f.ipc !== undefined ? `ipc://${f.ipc}` : `tcp://${f.host}:${f.port}`,
    chunkSize: f.chunkSize,
    l1Bytes: Math.floor(f.l1SizeGb * 1024 ** 3),
    evictionPolicy: 'LRU',
    evictionWatermark: f.evictionTriggerWatermark,
    evictionRatio: f.evictionRatio,
    readTtlMs: f.l1ReadTtlSeconds * 1000,
    writeTtlMs: f.l1WriteTtlSeconds * 1000,
    sessionTtlMs: f.sessionTtlSeconds * 1000,
    device: f.device,
    cudaDevice: f.cudaDevice,
    hashThreads: f.hashThreads,
    maxMessageBytes: Math.floor(f.maxMessageMb * 1024 * 1024),
    stagingChunks: f.engineStagingChunks,
    http: f.http ? { host: f.httpHost, port: f.httpPort } : undefined,
    metrics: f.metrics && !sdkDisabled,
    logLevel: level as ServeConfig['logLevel'],
    eventLogging: f.eventLogging,
    tracing,
    serviceInstanceId: f.serviceInstanceId,
    eventRingCapacity: f.eventRingCapacity,
    viewerTraces: sdkDisabled ? 0 : (f.viewerTraces ?? 200),
    demo: f.demo || f.demoSessions !== undefined,
    demoSessions: f.demoSessions,
  };
}
