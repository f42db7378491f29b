import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROMETHEUS_CONTENT_TYPE, scrapeMetrics } from '@kvmp/tracing';
import type { CacheServer } from '../create-cache-server.js';
import type { WireStats } from '../wire/service.js';

export interface HttpServerOptions {
  /** Default 127.0.0.1: the endpoints expose internals, keep them off public interfaces. */
  readonly host?: string;
  /** Default 8080; 0 picks a free port. */
  readonly port?: number;
  readonly core: CacheServer;
  /** Wire-layer stats for /status (engine-driven instances, request and error counts). */
  readonly wireStats?: () => WireStats;
  /** Whether the metrics subscriber runs on the core's pipeline (else /metrics answers 503). */
  readonly metrics: boolean;
  /** Extra facts for /status (version, endpoints). */
  readonly info?: Readonly<Record<string, unknown>>;
  /** More GET routes by exact path (e.g. a trace viewer's `/traces` and `/api/traces`). */
  readonly routes?: Readonly<Record<string, (url: URL) => Promise<HttpAnswer> | HttpAnswer>>;
}

export interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export interface KvmpHttpServer {
  readonly url: string;
  /** Makes /healthz answer 503 (shutdown has begun) while the server drains. */
  markDraining(): void;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * `/healthz`, `/status` (JSON) and `/metrics` (Prometheus text). Read-only: nothing here
 * changes server state, and no token ids, KV bytes or cache salts appear in any answer.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<KvmpHttpServer> {
  let draining = false;
  const { core } = options;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz':
        if (draining) send(res, 503, 'text/plain', 'draining\n');
        else send(res, 200, 'text/plain', 'ok\n');
        return;
      case '/status': {
        const s = core.status();
        const body = {
          ...options.info,
          status: draining ? 'draining' : 'serving',
          backend: s.backend,
          device: s.device,
          chunk_size: s.chunkSize,
          engines: s.instances,
          engine_driven: options.wireStats?.().engineDriven ?? [],
          sessions: { active: s.activeSessions, with_locks: s.sessionsWithLocks },
          inflight_copies: s.inflightCopies,
          l1: s.l1,
          hash_pool: s.pool,
          counters: s.counters,
          wire: options.wireStats ? (({ engineDriven: _, ...rest }) => rest)(options.wireStats()) : undefined,
          events: s.events ?? null,
        };
        send(res, 200, 'application/json', `${JSON.stringify(body, null, 2)}\n`);
        return;
      }
      case '/metrics': {
        const pipeline = core.pipeline;
        if (!options.metrics || pipeline === undefined) {
          send(res, 503, 'text/plain', 'metrics are disabled on this server (started with --disable-metrics)\n');
          return;
        }
        try {
          send(res, 200, PROMETHEUS_CONTENT_TYPE, await scrapeMetrics(pipeline));
        } catch (err) {
          send(res, 503, 'text/plain', `metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`);
        }
        return;
      }
      default: {
        const route = options.routes && Object.hasOwn(options.routes, path) ? options.routes[path] : undefined;
        if (route === undefined) {
          send(res, 404, 'text/plain', 'not found: try /healthz, /status or /metrics\n');
          return;
        }
        const answer = await route(new URL(req.url ?? '/', 'http://kvmp.local'));
        send(res, answer.status, answer.contentType, answer.body);
      }
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}`,
    markDraining() {
      draining = true;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
