/**
 * End to end: `kvmp serve` as a child process with tracing exported over OTLP (http/json) to a
 * receiver in this process; an engine in another child process runs the full request flow over
 * the ZMQ socket with W3C carriers; /metrics is scraped while the server runs; after SIGTERM
 * (which drains the events and flushes the exporter) every request is one span tree under the
 * caller's span.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { startOtlpJsonReceiver } from './fixtures/e2e-otlp-json.js';

const BIN = fileURLToPath(new URL('../../../packages/server/bin/kvmp.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('../../test/fixtures/e2e-client.mjs', import.meta.url));

function spawnLogged(t: import('ava').ExecutionContext, args: string[]) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const io = { out: '', err: '' };
  child.stdout.on('data', (d: Buffer) => {
    io.out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    io.err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (io.out.includes(text)) resolve();
      };
      child.stdout.on('data', check);
      check();
      void exited.then((code) => {
        if (!io.out.includes(text)) reject(new Error(`exited (${code}) before "${text}":\n${io.out}\n${io.err}`));
      });
    });
  return { child, io, exited, waitFor };
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

test('kvmp serve + engine process over ZMQ: verified bytes, OTLP span trees under the caller, /metrics', async (t) => {
  const receiver = await startOtlpJsonReceiver();
  t.teardown(() => receiver.close());
  const server = spawnLogged(t, [
    BIN,
    'serve',
    '--port',
    '0',
    '--http-port',
    '0',
    '--l1-size-gb',
    '0.125',
    '--hash-threads',
    '1',
    '--enable-tracing',
    '--otlp-endpoint',
    receiver.base,
    '--otlp-protocol',
    'http/json',
    '--service-instance-id',
    'e2e-server',
    '--log-level',
    'warn',
  ]);
  await server.waitFor('kvmp ready');
  const endpoint = /zmq\s+(\S+)/.exec(server.io.out)?.[1] ?? '';
  const httpUrl = /http\s+(http:\/\/[^/\s]+)/.exec(server.io.out)?.[1] ?? '';
  t.regex(endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  t.regex(server.io.out, /tracing\s+otlp-http → http:\/\/127\.0\.0\.1:\d+\/v1\/traces/);

  // Request i: prefix i % 2, so requests 2 and 3 hit what 0 and 1 stored (1024 of 2048 tokens).
  const plan = [0, 1, 2, 3].map((i) => ({
    id: `e2e-${i}`,
    prefix: i % 2,
    unique: i,
    tokens: 2048,
    shared: 1024,
    traceId: hex(0xabc000 + i, 32),
    parentSpanId: hex(0xdef000 + i, 16),
  }));
  const client = spawnLogged(t, [
    CLIENT,
    endpoint,
    JSON.stringify(plan.map((p) => ({ ...p, traceparent: `00-${p.traceId}-${p.parentSpanId}-01` }))),
  ]);
  await client.waitFor('done');
  t.is(await client.exited, 0, client.io.err);
  const reports = client.io.out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { requestId: string; hitTokens: number; storedChunks: number; corruptChunks: number });
  t.deepEqual(
    reports.map((r) => [r.requestId, r.hitTokens, r.storedChunks, r.corruptChunks]),
    [
      ['e2e-0', 0, 8, 0],
      ['e2e-1', 0, 8, 0],
      ['e2e-2', 1024, 4, 0],
      ['e2e-3', 1024, 4, 0],
    ],
  );

  // Metrics while the server runs.
  const metrics = await (await fetch(`${httpUrl}/metrics`)).text();
  const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? Number.NaN);
  t.is(value(/^kvmp_lookup_requests_total\{[^}]*\} (\d+)$/m), 4);
  t.is(value(/^kvmp_lookup_requested_tokens_total\{[^}]*\} (\d+)$/m), 4 * 2048);
  t.is(value(/^kvmp_lookup_hit_tokens_total\{[^}]*\} (\d+)$/m), 2048);
  t.is(value(/^kvmp_transfer_chunks_total\{direction="store"[^}]*\} (\d+)$/m), 24);
  t.is(value(/^kvmp_transfer_chunks_total\{direction="retrieve"[^}]*\} (\d+)$/m), 8);
  const status = (await (await fetch(`${httpUrl}/status`)).json()) as { engines: { instanceId: string }[] };
  t.deepEqual(
    status.engines.map((e) => e.instanceId),
    ['e2e-engine-0'],
  );

  // Graceful stop flushes the exporter.
  server.child.kill('SIGTERM');
  t.is(await server.exited, 0, server.io.err);
  t.regex(server.io.out, /kvmp stopped/);
  t.true([...receiver.contentTypes].every((c) => c.startsWith('application/json')));

  for (const p of plan) {
    const trace = receiver.spans.filter((s) => s.traceId === p.traceId);
    const roots = trace.filter((s) => s.name === 'request');
    t.is(roots.length, 1, `${p.id}: one root`);
    const root = roots[0];
    t.is(root.parentSpanId, p.parentSpanId, `${p.id}: the caller's span is the parent`);
    t.is(root.resource['service.instance.id'], 'e2e-server');
    const children = trace.filter((s) => s.parentSpanId === root.spanId);
    const names = children.map((s) => s.name).sort();
    const hit = p.unique >= 2;
    t.deepEqual(
      names,
      hit ? ['mp.lookup_prefetch', 'mp.retrieve', 'mp.store'] : ['mp.lookup_prefetch', 'mp.store'],
      p.id,
    );
    for (const c of children) {
      t.true(c.startNs >= root.startNs && c.endNs <= root.endNs, `${p.id}: ${c.name} inside the root`);
    }
    t.is(root.attributes.hit_tokens, hit ? 1024 : 0);
    // Nothing outside the tree in this trace except the tree's own descendants.
    const ids = new Set([root.spanId, ...children.map((c) => c.spanId)]);
    t.true(
      trace.every((s) => s === root || ids.has(s.parentSpanId)),
      `${p.id}: a single tree`,
    );
  }
});
