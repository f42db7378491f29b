import { requestTracingSubscriber } from '@kvmp/tracing';
import test from 'ava';
import { runTrace } from '../src/cli/trace.js';
import { DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { startHttpServer } from '../src/http/http-server.js';
import { viewerRoutes } from '../src/http/viewer-routes.js';
import { startWire } from './wire-harness.js';

interface ApiTree {
  sessionId: string;
  durationMs: number;
  hitRate?: number;
  spans: { name: string; depth: number; startMs: number; durationMs: number }[];
}

test('/traces and /api/traces show recent request trees; kvmp trace draws them', async (t) => {
  const h = await startWire(t, {
    core: { tracing: { subscribers: [requestTracingSubscriber({ exporter: 'none', viewerTraces: 50 })] } },
  });
  const http = await startHttpServer({ port: 0, core: h.core, metrics: false, routes: viewerRoutes(h.core) });
  t.teardown(() => http.close());
  const client = await h.client();
  const engine = new DemoEngine(client, { instanceId: 'viewer-engine' });
  await engine.register();
  const prompt = demoPrompt(1, 1, 64 * 3, 0);
  await engine.runRequest('miss', prompt);
  await engine.runRequest('hit', prompt);

  let trees: ApiTree[] = [];
  for (let i = 0; i < 200 && trees.length < 2; i++) {
    trees = ((await (await fetch(`${http.url}/api/traces`)).json()) as { traces: ApiTree[] }).traces;
    if (trees.length < 2) await new Promise((r) => setTimeout(r, 10));
  }
  t.deepEqual(
    trees.map((x) => x.sessionId),
    ['hit', 'miss'],
    'newest first',
  );
  const hit = trees[0];
  t.is(hit.hitRate, 1);
  t.deepEqual(
    hit.spans.map((s) => s.name),
    ['request', 'mp.lookup_prefetch', 'mp.retrieve'],
    'a full hit retrieves and stores nothing new',
  );
  for (const s of hit.spans.slice(1)) {
    t.is(s.depth, 1);
    t.true(s.startMs >= 0 && s.startMs + s.durationMs <= hit.durationMs + 1e-6, `${s.name} inside the root`);
  }
  t.deepEqual(
    trees[1].spans.map((s) => s.name),
    ['request', 'mp.lookup_prefetch', 'mp.store'],
  );
  t.is(((await (await fetch(`${http.url}/api/traces?limit=1`)).json()) as { traces: ApiTree[] }).traces.length, 1);

  const page = await fetch(`${http.url}/traces`);
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /text\/html/);
  t.regex(await page.text(), /kvmp request traces/);

  const lines: string[] = [];
  const code = await runTrace({ url: http.url, limit: 5, width: 40, color: false, session: 'hit' }, (l) =>
    lines.push(l),
  );
  t.is(code, 0);
  t.regex(lines[0], /^request hit {2}.* {2}hit 100%/);
  const text = lines.join('\n').split('\n');
  t.true(
    text.some((l) => /^ {4}mp\.retrieve +\|/.test(l)),
    text.join('\n'),
  );
});

test('kvmp trace reports an unreachable server clearly', async (t) => {
  const lines: string[] = [];
  const code = await runTrace({ url: 'http://127.0.0.1:9', limit: 1, width: 40, color: false }, (l) => lines.push(l));
  t.is(code, 1);
  t.regex(lines[0], /^kvmp trace: cannot read traces from http:\/\/127\.0\.0\.1:9/);
});
