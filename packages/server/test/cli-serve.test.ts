import test from 'ava';
import { KvmpClientError } from '../src/client/client-error.js';
import { DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { KvmpClient } from '../src/client/kvmp-client.js';
import { runKvmp, spawnServe } from './cli-process.js';

const SMALL = ['--port', '0', '--http-port', '0', '--l1-size-gb', '0.0625', '--hash-threads', '1'];

test('kvmp serve: start-up lines, env fallbacks, a flow over TCP, graceful SIGTERM with requests in flight', async (t) => {
  const s = await spawnServe(t, SMALL, { KVMP_CHUNK_SIZE: '128', KVMP_MAX_MESSAGE_MB: '8' });
  const out = s.stdout();
  t.regex(out, /chunk 128 tokens/);
  t.regex(s.endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  t.regex(out, /max 8 MiB\/message/);
  t.truthy(s.httpUrl);
  t.regex(out, /tracing\s+off/);

  const client = await KvmpClient.connect({ endpoint: s.endpoint, heartbeatIntervalMs: 0, timeoutMs: 10_000 });
  t.teardown(() => client.close());
  t.is(client.server.chunkSize, 128);
  const engine = new DemoEngine(client);
  await engine.register();
  const prompt = demoPrompt(1, 1, 128 * 4, 0);
  t.is((await engine.runRequest('a', prompt)).storedChunks, 4);
  t.is((await engine.runRequest('b', prompt)).hitTokens, 128 * 4);

  // Requests in flight when SIGTERM arrives are answered (a result, or CLOSED for ones that
  // arrived after the stop), never dropped.
  const inflight = Array.from({ length: 50 }, (_, i) =>
    engine.runRequest(`late-${i}`, demoPrompt(2, i, 128 * 2, 0)).then(
      () => 'ok',
      (err: unknown) => (err instanceof KvmpClientError ? err.code : 'other'),
    ),
  );
  await new Promise((r) => setTimeout(r, 20));
  s.child.kill('SIGTERM');
  const outcomes = await Promise.all(inflight);
  t.log(
    `in-flight outcomes: ${outcomes.filter((o) => o === 'ok').length} ok, ${outcomes.filter((o) => o === 'CLOSED').length} CLOSED`,
  );
  t.true(
    outcomes.every((o) => o === 'ok' || o === 'CLOSED'),
    outcomes.join(','),
  );
  t.is(await s.exited, 0);
  t.regex(s.stdout(), /kvmp stopping \(SIGTERM\)/);
  t.regex(s.stdout(), /kvmp stopped/);
});

test('kvmp serve: configuration errors exit 2 with a clear message', async (t) => {
  const noEndpoint = await runKvmp(['serve', '--enable-tracing', ...SMALL], {
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
  });
  t.is(noEndpoint.code, 2);
  t.regex(noEndpoint.stderr, /--enable-tracing needs --otlp-endpoint/);
  const policy = await runKvmp(['serve', '--eviction-policy', 'ARC', ...SMALL]);
  t.is(policy.code, 2);
  t.regex(policy.stderr, /only LRU/);
  const device = await runKvmp(['serve', '--device', 'tpu', ...SMALL]);
  t.not(device.code, 0);
  t.regex(device.stderr, /Allowed choices are cpu, cuda/);
});

test('kvmp serve --demo-sessions: a demo engine process runs against it; OTEL_SDK_DISABLED turns tracing and metrics off', async (t) => {
  const s = await spawnServe(
    t,
    ['--enable-tracing', '--otlp-endpoint', 'http://127.0.0.1:9', '--demo-sessions', '6', ...SMALL],
    { OTEL_SDK_DISABLED: 'true' },
  );
  t.regex(s.stdout(), /tracing\s+off/);
  await s.waitFor('demo      finished (exit code 0)');
  t.regex(s.stdout(), /kvmp demo round 1: 6 requests .* 0 corrupt/);
  const status = (await (await fetch(`${s.httpUrl}/status`)).json()) as { engines: { instanceId: string }[] };
  t.is(status.engines.length, 1);
  t.regex(status.engines[0].instanceId, /^demo-/);
  const port = /:(\d+)$/.exec(s.endpoint)?.[1] ?? '';
  const clash = await runKvmp(['serve', ...SMALL, '--port', port]);
  t.is(clash.code, 1);
  t.regex(clash.stderr, /cannot listen on tcp:\/\/127\.0\.0\.1:\d+: address already in use/);
  const r = await fetch(`${s.httpUrl}/metrics`);
  t.is(r.status, 503);
  s.child.kill('SIGINT');
  t.is(await s.exited, 0);
});
