/**
 * A real Prometheus (Debian `prometheus`, started here on loopback) scrapes a running
 * `kvmp serve` during a demo workload. Through Prometheus's query API: every metric documented
 * in docs/METRICS.md exists, and the ones the workload drives move as expected. The same run
 * checks that every metric the Grafana dashboard queries appears in kvmp's /metrics.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/server/bin/kvmp.js');
const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function start(t: ExecutionContext, cmd: string, args: string[]): { child: ChildProcess; out: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, out: () => out };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Metric names in the first column of docs/METRICS.md's tables. */
function documentedMetrics(): string[] {
  const md = readFileSync(join(ROOT, 'docs/METRICS.md'), 'utf8');
  return [...md.matchAll(/^\| `(kvmp_[a-z0-9_]+)` \|/gm)].map((m) => m[1]);
}

/** Metric names the dashboard's PromQL uses. */
function dashboardMetrics(): string[] {
  const dash = JSON.parse(readFileSync(join(ROOT, 'examples/observability/grafana/dashboards/kvmp.json'), 'utf8')) as {
    panels: { targets?: { expr?: string }[] }[];
  };
  const names = new Set<string>();
  for (const p of dash.panels)
    for (const tg of p.targets ?? []) for (const m of (tg.expr ?? '').matchAll(/\bkvmp_[a-z0-9_]+/g)) names.add(m[0]);
  return [...names];
}

(hasPrometheus ? test : test.skip)('Prometheus scrapes kvmp serve: documented metrics exist and move', async (t) => {
  t.timeout(120_000);
  const server = start(t, process.execPath, [
    BIN,
    'serve',
    '--port=0',
    '--http-port=0',
    '--l1-size-gb=0.25',
    '--hash-threads=1',
    '--log-level=warn',
    '--demo',
  ]);
  const httpUrl = await until('kvmp ready', async () =>
    server.out().includes('kvmp ready') ? /http\s+(http:\/\/[^/\s]+)/.exec(server.out())?.[1] : undefined,
  );

  const dir = mkdtempSync(join(tmpdir(), 'kvmp-prom-'));
  const promPort = await freePort();
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: kvmp\n    static_configs: [{ targets: ['${new URL(httpUrl).host}'] }]\n`,
  );
  const prom = start(t, 'prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    '--log.level=warn',
  ]);
  const api = `http://127.0.0.1:${promPort}/api/v1`;
  const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const res = await fetch(`${api}/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as {
      status: string;
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success') throw new Error(`query ${q} failed`);
    return body.data.result;
  };
  const scalar = async (q: string): Promise<number | undefined> => {
    const r = await query(q);
    return r.length === 0 ? undefined : Number(r[0].value[1]);
  };

  const firstRequests = await until('a scrape with lookups', async () => {
    const v = await scalar('sum(kvmp_lookup_requests_total)');
    return v !== undefined && v > 0 ? v : undefined;
  });
  t.is(await scalar('up{job="kvmp"}'), 1, prom.out());

  // Every documented metric is there (histograms as their _count series).
  const documented = documentedMetrics();
  t.true(documented.length >= 30, `METRICS.md lists ${documented.length} metrics`);
  await until('every documented metric scraped', async () => {
    for (const name of documented) {
      const series =
        /_(gb_per_second|seconds)$/.test(name) && name.startsWith('kvmp_transfer_') ? `${name}_count` : name;
      if ((await query(`count(${series})`)).length === 0) return undefined;
    }
    return true;
  });
  for (const name of documented) {
    const series = /_(gb_per_second|seconds)$/.test(name) && name.startsWith('kvmp_transfer_') ? `${name}_count` : name;
    t.is((await query(`count(${series})`)).length, 1, `${series} exists in Prometheus`);
  }

  // They move as the workload runs.
  const later = await until('more lookups', async () => {
    const v = await scalar('sum(kvmp_lookup_requests_total)');
    return v !== undefined && v > firstRequests ? v : undefined;
  });
  t.true(later > firstRequests);
  t.true(((await scalar('sum(kvmp_lookup_hit_tokens_total)')) ?? 0) > 0, 'shared prefixes hit');
  t.true(
    ((await scalar('sum(kvmp_lookup_hit_tokens_total)')) ?? 0) <=
      ((await scalar('sum(kvmp_lookup_requested_tokens_total)')) ?? 0),
  );
  t.true(((await scalar('sum(kvmp_transfer_finished_total{direction="store",outcome="ok"})')) ?? 0) > 0);
  t.true(((await scalar('sum(kvmp_transfer_finished_total{direction="retrieve",outcome="ok"})')) ?? 0) > 0);
  t.true(((await scalar('sum(kvmp_transfer_throughput_gb_per_second_sum)')) ?? 0) > 0, 'copies are timed');
  t.true(((await scalar('max(kvmp_l1_usage_bytes)')) ?? 0) > 0, 'L1 holds the stored chunks');
  t.true(((await scalar('max(kvmp_l1_capacity_bytes)')) ?? 0) >= 0.25 * 2 ** 30 * 0.99);
  t.true(((await scalar('sum(kvmp_events_delivered_total)')) ?? 0) > 0);
  t.is(await scalar('sum(kvmp_events_dropped_total)'), 0);
  t.is(await scalar('sum(kvmp_tracing_leaked_spans_total)'), 0);
  t.is(await scalar('sum(kvmp_events_subscriber_exceptions_total)'), 0);

  // The dashboard only asks for metrics kvmp exposes.
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const exposed = new Set([...text.matchAll(/^(kvmp_[a-z0-9_]+)/gm)].map((m) => m[1]));
  for (const name of dashboardMetrics()) t.true(exposed.has(name), `dashboard metric ${name} in /metrics`);

  server.child.kill('SIGTERM');
  prom.child.kill('SIGTERM');
});
