import { metricsSubscriber } from '@kvmp/tracing';
import test from 'ava';
import { DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { startHttpServer } from '../src/http/http-server.js';
import { startWire } from './wire-harness.js';

test('/healthz, /status and /metrics on 127.0.0.1 reflect the server', async (t) => {
  const h = await startWire(t, { core: { tracing: { subscribers: [metricsSubscriber()] } } });
  const http = await startHttpServer({ port: 0, core: h.core, wireStats: () => h.wire.service.stats(), metrics: true });
  t.teardown(() => http.close());
  t.regex(http.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const client = await h.client();
  const engine = new DemoEngine(client, { instanceId: 'http-engine' });
  await engine.register();
  const prompt = demoPrompt(1, 1, 64 * 3, 0);
  await engine.runRequest('h1', prompt);
  await engine.runRequest('h2', prompt);
  await client.lookup({ requestId: 'open', modelName: 'demo-model', tokens: prompt });

  const health = await fetch(`${http.url}/healthz`);
  t.is(health.status, 200);
  t.is(await health.text(), 'ok\n');

  const status = (await (await fetch(`${http.url}/status`)).json()) as {
    engines: { instanceId: string; layout: { kind: string } }[];
    engine_driven: { instanceId: string; declaredLayout: { numLayers: number } }[];
    sessions: { active: number; with_locks: number };
    l1: { usedBytes?: number; capacityBytes: number };
    events: { dropped?: number } | null;
    wire: { requests: Record<string, number> };
  };
  t.is(status.engines[0].instanceId, 'http-engine');
  t.is(status.engines[0].layout.kind, 'flash_attn');
  t.is(status.engine_driven[0].declaredLayout.numLayers, 4);
  t.is(status.sessions.active, 1, 'the open lookup session');
  t.is(status.sessions.with_locks, 1);
  t.true(status.l1.capacityBytes > 0);
  t.not(status.events, null);
  t.is(status.wire.requests.LOOKUP, 3);
  t.false(JSON.stringify(status).includes(String(prompt[0])) && JSON.stringify(status).includes(String(prompt[1])));

  const metrics = await fetch(`${http.url}/metrics`);
  t.is(metrics.status, 200);
  t.regex(metrics.headers.get('content-type') ?? '', /text\/plain; version=0\.0\.4/);
  const text = await metrics.text();
  t.regex(text, /kvmp_lookup_hit_tokens_total\{[^}]*\} 192/);

  t.is((await fetch(`${http.url}/nope`)).status, 404);
  t.is((await fetch(`${http.url}/status`, { method: 'POST' })).status, 405);
  http.markDraining();
  t.is((await fetch(`${http.url}/healthz`)).status, 503);
});

test('/metrics answers 503 with a reason when metrics are off', async (t) => {
  const h = await startWire(t);
  const http = await startHttpServer({
    port: 0,
    core: h.core,
    metrics: false,
    routes: { '/extra': () => ({ status: 200, contentType: 'text/html', body: '<p>viewer</p>' }) },
  });
  t.teardown(() => http.close());
  const r = await fetch(`${http.url}/metrics`);
  t.is(r.status, 503);
  t.regex(await r.text(), /metrics are disabled/);
  const extra = await fetch(`${http.url}/extra`);
  t.is(extra.status, 200);
  t.is(await extra.text(), '<p>viewer</p>');
  t.is((await fetch(`${http.url}/toString`)).status, 404);
});
