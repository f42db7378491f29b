import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loggingSubscriber, metricsSubscriber, requestTracingSubscriber, type SubscriberSpec } from '@kvmp/tracing';
import { pino } from 'pino';
import { type CacheServer, createCacheServer } from '../create-cache-server.js';
import { type KvmpHttpServer, startHttpServer } from '../http/http-server.js';
import { viewerRoutes } from '../http/viewer-routes.js';
import { PROTOCOL_VERSION } from '../wire/protocol.js';
import { startWireServer } from '../wire/start-wire-server.js';
import type { ZmqWireServer } from '../wire/zmq-server.js';
import type { ServeConfig } from './serve-config.js';
import { KVMP_VERSION } from './version.js';

export interface RunningServer {
  readonly endpoint: string;
  readonly httpUrl: string | undefined;
  /** Graceful shutdown; idempotent. */
  stop(reason: string): Promise<void>;
}

/**
 * L1 segments of at most 64 MiB that add up to the requested size (the pool rounds the
 * capacity down to whole segments).
 */
function segmentBytesFor(capacity: number): number {
  const segments = Math.ceil(capacity / (64 * 1024 * 1024));
  return Math.max(4096, Math.floor(capacity / segments / 4096) * 4096);
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * Starts the core, the ZMQ protocol server and the HTTP endpoints, and prints what listens
 * where. Start-up lines go to stdout (for people); logs are pino JSON on stderr.
 */
export async function startServe(config: ServeConfig, out: (line: string) => void): Promise<RunningServer> {
  const log = pino({ name: 'kvmp', level: config.logLevel }, pino.destination({ fd: 2, sync: false }));
  const subscribers: SubscriberSpec[] = [];
  const identity = config.serviceInstanceId === undefined ? {} : { serviceInstanceId: config.serviceInstanceId };
  if (config.metrics) subscribers.push(metricsSubscriber(identity));
  if (config.eventLogging) subscribers.push(loggingSubscriber({ level: config.logLevel }));
  // Request spans are built when they are exported, and also when only the built-in viewer
  // shows them (exporter 'none'): a user without a trace backend still sees waterfalls.
  if (config.tracing || config.viewerTraces > 0) {
    subscribers.push(
      requestTracingSubscriber({
        exporter: config.tracing?.exporter ?? 'none',
        ...(config.tracing?.endpoint === undefined ? {} : { endpoint: config.tracing.endpoint }),
        ...(config.tracing?.file === undefined ? {} : { file: config.tracing.file }),
        viewerTraces: config.viewerTraces,
        ...identity,
      }),
    );
  }

  const core: CacheServer = await createCacheServer({
    chunkSize: config.chunkSize,
    l1: {
      capacityBytes: config.l1Bytes,
      segmentBytes: segmentBytesFor(config.l1Bytes),
      readTtlMs: config.readTtlMs,
      writeTtlMs: config.writeTtlMs,
      evictionWatermark: config.evictionWatermark,
      evictionRatio: config.evictionRatio,
    },
    sessionTtlMs: config.sessionTtlMs,
    gpu: { backend: config.device, device: config.cudaDevice },
    ...(config.hashThreads === undefined ? {} : { pool: { threads: config.hashThreads } }),
    tracing:
      subscribers.length === 0
        ? false
        : {
            subscribers,
            ...(config.eventRingCapacity === undefined ? {} : { capacity: config.eventRingCapacity }),
          },
  });

  let wire: ZmqWireServer | undefined;
  let http: KvmpHttpServer | undefined;
  try {
    wire = await startWireServer(core, {
      endpoint: config.endpoint,
      maxMessageBytes: config.maxMessageBytes,
      sessionTtlMs: config.sessionTtlMs,
      serverName: `kvmp/${KVMP_VERSION}`,
      ...(config.stagingChunks === undefined ? {} : { stagingChunks: config.stagingChunks }),
      logger: log,
    });
    if (config.http) {
      const w = wire;
      http = await startHttpServer({
        host: config.http.host,
        port: config.http.port,
        core,
        wireStats: () => w.service.stats(),
        metrics: config.metrics,
        info: { version: KVMP_VERSION, protocol_version: PROTOCOL_VERSION, zmq_endpoint: w.endpoint },
        routes: config.viewerTraces > 0 ? viewerRoutes(core) : {},
      });
    }
  } catch (err) {
    await wire?.close();
    await core.close();
    const what = wire === undefined ? config.endpoint : `http://${config.http?.host}:${config.http?.port}`;
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      /in use/i.test(reason)
        ? `cannot listen on ${what}: address already in use (another kvmp serve? pick --port / --http-port)`
        : `cannot listen on ${what}: ${reason}`,
    );
  }

  const endpoint = wire.endpoint;
  const mode = config.device === 'cuda' ? 'CUDA IPC handles' : 'engine-driven (KV bytes in messages)';
  out(`kvmp ${KVMP_VERSION} serve · protocol v${PROTOCOL_VERSION} · chunk ${config.chunkSize} tokens`);
  out(
    `  L1        ${gib(core.status().l1.capacityBytes)} host memory, ${config.evictionPolicy} eviction at ${config.evictionWatermark}, device ${core.status().device}`,
  );
  out(
    `  zmq       ${endpoint}  (ROUTER · msgpack · ${mode} · max ${(config.maxMessageBytes / 2 ** 20).toFixed(0)} MiB/message)`,
  );
  if (http) {
    out(
      `  http      ${http.url}/healthz  ${http.url}/status  ${http.url}/metrics${config.metrics ? '' : ' (disabled)'}`,
    );
    if (config.viewerTraces > 0)
      out(`  traces    ${http.url}/traces  (waterfalls of up to ${config.viewerTraces} recent requests)`);
  } else {
    out('  http      off (--no-http)');
  }
  if (config.tracing) {
    const where = config.tracing.file ?? config.tracing.endpoint ?? 'OTEL_EXPORTER_OTLP_* endpoint';
    out(`  tracing   ${config.tracing.exporter} → ${where}`);
  } else {
    out('  tracing   off (--enable-tracing --otlp-endpoint URL to export spans)');
  }
  out(
    `  metrics   ${config.metrics ? (http ? `Prometheus text on ${http.url}/metrics` : 'on, but not served (--no-http)') : 'off'}`,
  );

  let demo: ChildProcess | undefined;
  if (config.demo) {
    const bin = fileURLToPath(new URL('../../../bin/kvmp.js', import.meta.url));
    const amount = config.demoSessions === undefined ? ['--loop'] : ['--sessions', String(config.demoSessions)];
    const child = spawn(process.execPath, [bin, 'demo', '--connect', endpoint, ...amount], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('exit', (code, signal) => {
      if (!stopping) out(`  demo      finished (${signal ?? `exit code ${code}`}); the server keeps running`);
    });
    demo = child;
    out(
      `  demo      engine workload (pid ${demo.pid}) → ${endpoint}; watch ${http ? `${http.url}/status and ${http.url}/metrics` : 'the demo output'}`,
    );
  }
  out('kvmp ready (Ctrl-C to stop)');

  let stopping: Promise<void> | undefined;
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      out(`kvmp stopping (${reason}): refusing new requests, finishing in-flight ones`);
      if (demo && demo.exitCode === null) {
        const exited = new Promise((r) => demo?.once('exit', r));
        demo.kill('SIGTERM');
        await exited;
      }
      http?.markDraining();
      await wire?.close();
      await http?.close();
      // Waits for copies, stops the GPU worker and hash pool, drains the event ring and
      // flushes every exporter, then frees L1.
      await core.close();
      log.flush();
      out('kvmp stopped');
    })();
    return stopping;
  };
  return { endpoint, httpUrl: http?.url, stop };
}
