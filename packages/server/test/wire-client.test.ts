import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requestTracingSubscriber } from '@kvmp/tracing';
import { decode, encode } from '@msgpack/msgpack';
import test from 'ava';
import { Router } from 'zeromq';
import type { KvmpClientError } from '../src/client/client-error.js';
import { DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { KvmpClient } from '../src/client/kvmp-client.js';
import { createCacheServer } from '../src/index.js';
import { RequestType } from '../src/wire/protocol.js';
import { startWireServer } from '../src/wire/start-wire-server.js';
import { startWire } from './wire-harness.js';

/** A ROUTER that answers HELLO as told and never answers anything else. */
async function fakeServer(t: import('ava').ExecutionContext, hello: unknown): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'kvmp-fake-'));
  const router = new Router({ linger: 0 });
  const endpoint = `ipc://${join(dir, 's')}`;
  await router.bind(endpoint);
  void (async () => {
    try {
      for await (const [identity, id, type] of router) {
        if (decode(type) === RequestType.HELLO) await router.send([identity, id, type, encode(hello)]);
      }
    } catch {
      // closed
    }
  })();
  t.teardown(() => {
    router.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return endpoint;
}

const HELLO_OK = {
  ok: true,
  result: {
    protocol_version: 1,
    server: 'fake',
    chunk_size: 64,
    max_message_bytes: 1024,
    backend: 'cpu',
    transfer_modes: [],
  },
};

test('per-call timeout rejects with TIMEOUT; other calls keep their own deadlines', async (t) => {
  const endpoint = await fakeServer(t, HELLO_OK);
  const client = await KvmpClient.connect({ endpoint, heartbeatIntervalMs: 0, timeoutMs: 5000 });
  t.teardown(() => client.close());
  const err = await t.throwsAsync(client.getChunkSize({ timeoutMs: 50 }));
  t.is((err as KvmpClientError).code, 'TIMEOUT');
  const pending = client.ping(undefined, { timeoutMs: 60_000 });
  client.close();
  t.is(((await t.throwsAsync(pending)) as KvmpClientError).code, 'CLIENT_CLOSED');
});

test('a protocol mismatch fails the handshake with a clear message', async (t) => {
  const endpoint = await fakeServer(t, {
    ok: false,
    error: {
      code: 'VERSION_MISMATCH',
      message: 'client speaks kvmp protocol 1, this server speaks 2: upgrade the older side',
    },
  });
  const err = await t.throwsAsync(KvmpClient.connect({ endpoint, heartbeatIntervalMs: 0 }));
  t.is((err as KvmpClientError).code, 'VERSION_MISMATCH');
  t.regex(err?.message ?? '', /protocol 1.*speaks 2/);
});

test('heartbeat: after a server restart the client reconnects and replays its registration', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmp-restart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const endpoint = `ipc://${join(dir, 'kvmp.sock')}`;
  const start = async () => {
    const core = await createCacheServer({ chunkSize: 64, l1: { capacityBytes: 16 << 20 }, pool: { threads: 1 } });
    const wire = await startWireServer(core, { endpoint });
    return { core, wire };
  };
  let server = await start();
  const states: string[] = [];
  let recovered!: () => void;
  const recoveredP = new Promise<void>((r) => {
    recovered = r;
  });
  const client = await KvmpClient.connect({
    endpoint,
    heartbeatIntervalMs: 100,
    heartbeatMisses: 2,
    timeoutMs: 300,
    onStateChange: (s) => states.push(s),
    onRecover: () => recovered(),
  });
  t.teardown(async () => {
    client.close();
    await server.wire.close();
    await server.core.close();
  });
  const engine = new DemoEngine(client);
  await engine.register();
  await server.wire.close();
  await server.core.close();
  server = await start();
  await recoveredP;
  t.true(states.includes('reconnected'));
  // The registration was replayed: the engine works against the new server.
  const r = await engine.runRequest('after-restart', demoPrompt(1, 1, 64 * 2, 0));
  t.is(r.storedChunks, 2);
  t.true(server.core.status().instances.some((i) => i.instanceId === engine.instanceId));
});

test('the W3C carrier on a request becomes the parent of the request root span', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmp-trace-'));
  const file = join(dir, 'spans.jsonl');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const h = await startWire(t, {
    core: { tracing: { subscribers: [requestTracingSubscriber({ exporter: 'jsonl', file })] } },
  });
  const client = await h.client();
  const engine = new DemoEngine(client);
  await engine.register();
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parent = '00f067aa0ba902b7';
  await engine.runRequest('traced', demoPrompt(2, 2, 64 * 2, 0), {
    trace: { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=x' },
  });
  await engine.runRequest('untraced', demoPrompt(2, 3, 64 * 2, 0));
  client.close();
  await h.wire.close();
  await h.core.close();
  const spans = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map(
      (l) =>
        JSON.parse(l) as {
          name: string;
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          attributes: Record<string, unknown>;
        },
    );
  const roots = spans.filter((s) => s.name === 'request');
  const traced = roots.find((s) => s.traceId === traceId);
  t.truthy(traced, 'root span in the caller trace');
  t.is(traced?.parentSpanId, parent);
  const children = spans.filter((s) => s.parentSpanId === traced?.spanId).map((s) => s.name);
  t.true(children.includes('mp.store'));
  // The untraced request starts its own trace (nothing ambient leaks in).
  t.is(roots.filter((s) => s.traceId === traceId).length, 1);
  t.is(roots.length, 2);
});
