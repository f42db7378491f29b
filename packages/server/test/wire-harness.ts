import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { KvmpClient, type KvmpClientOptions } from '../src/client/kvmp-client.js';
import { type CacheServer, type CacheServerConfig, createCacheServer } from '../src/index.js';
import { startWireServer, type WireServerOptions } from '../src/wire/start-wire-server.js';
import type { ZmqWireServer } from '../src/wire/zmq-server.js';

export interface WireHarness {
  readonly core: CacheServer;
  readonly wire: ZmqWireServer;
  readonly endpoint: string;
  client(options?: Partial<KvmpClientOptions>): Promise<KvmpClient>;
}

/** A core (cpu backend, 64-token chunks) behind a ZMQ server on an ipc socket in a temp dir. */
export async function startWire(
  t: ExecutionContext,
  options: { core?: Partial<CacheServerConfig>; wire?: Partial<WireServerOptions> } = {},
): Promise<WireHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'kvmp-wire-'));
  const core = await createCacheServer({
    chunkSize: 64,
    l1: { capacityBytes: 64 * 1024 * 1024, segmentBytes: 16 * 1024 * 1024 },
    pool: { threads: 1 },
    ...options.core,
  });
  const wire = await startWireServer(core, { endpoint: `ipc://${join(dir, 'kvmp.sock')}`, ...options.wire });
  const clients: KvmpClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await wire.close();
    await core.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    core,
    wire,
    endpoint: wire.endpoint,
    async client(o = {}) {
      const c = await KvmpClient.connect({ endpoint: wire.endpoint, heartbeatIntervalMs: 0, timeoutMs: 10_000, ...o });
      clients.push(c);
      return c;
    },
  };
}
