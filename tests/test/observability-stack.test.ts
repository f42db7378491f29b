/**
 * The compose stack in examples/observability cannot run here (no Docker engine), so it is
 * checked statically: every mounted file exists, ports agree across files, the collector's
 * pipelines are wired, and Prometheus accepts its config (promtool, Debian `prometheus`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse } from 'yaml';

const dir = fileURLToPath(new URL('../../../examples/observability/', import.meta.url));
const load = <T>(file: string): T => parse(readFileSync(join(dir, file), 'utf8')) as T;

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  depends_on?: string[];
}
const compose = load<{ services: Record<string, Service> }>('docker-compose.yml');
const services = compose.services;
const flag = (svc: Service, name: string): string | undefined =>
  svc.command?.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const published = (svc: Service): Map<number, number> =>
  new Map((svc.ports ?? []).map((p) => p.split(':').map(Number) as [number, number]).map(([h, c]) => [c, h]));

test('every service is pinned by tag and every mounted config exists', (t) => {
  for (const [name, svc] of Object.entries(services)) {
    if (svc.build !== undefined) {
      t.true(existsSync(join(dir, svc.build.context, svc.build.dockerfile)), `${name}: Dockerfile`);
      continue;
    }
    t.regex(svc.image ?? '', /^[\w./-]+:[\w.-]+$/, `${name}: image pinned by tag`);
    t.false((svc.image ?? '').endsWith(':latest'), `${name}: not :latest`);
    for (const volume of svc.volumes ?? []) {
      const source = volume.split(':')[0];
      if (source.startsWith('./')) t.true(existsSync(join(dir, source)), `${name}: ${source} exists`);
    }
  }
  for (const [name, svc] of Object.entries(services)) {
    for (const dep of svc.depends_on ?? []) t.truthy(services[dep], `${name} depends on a defined service ${dep}`);
  }
});

test('ports agree: kvmp → collector → Tempo, Prometheus → kvmp, Grafana → both', (t) => {
  const collector = load<{
    receivers: { otlp: { protocols: Record<string, { endpoint: string }> } };
    exporters: Record<string, { endpoint?: string }>;
  }>('otel-collector.yaml');
  const port = (endpoint: string): number => Number(endpoint.split(':').at(-1));
  const otlpHttp = port(collector.receivers.otlp.protocols.http.endpoint);
  const otlpGrpc = port(collector.receivers.otlp.protocols.grpc.endpoint);

  const kvmp = services.kvmp;
  const otlpEndpoint = new URL(flag(kvmp, 'otlp-endpoint') ?? '');
  t.is(otlpEndpoint.hostname, 'otel-collector');
  t.is(Number(otlpEndpoint.port), otlpHttp, 'kvmp exports http/protobuf to the collector OTLP HTTP port');
  t.is(kvmp.environment?.OTEL_EXPORTER_OTLP_PROTOCOL, 'http/protobuf');
  t.is(published(services['otel-collector']).get(otlpHttp), otlpHttp);
  t.is(published(services['otel-collector']).get(otlpGrpc), otlpGrpc);

  const tempo = load<{
    server: { http_listen_port: number };
    distributor: { receivers: { otlp: { protocols: { grpc: { endpoint: string } } } } };
  }>('tempo.yaml');
  const tempoExporter = collector.exporters['otlp/tempo'].endpoint ?? '';
  t.is(tempoExporter, `tempo:${port(tempo.distributor.receivers.otlp.protocols.grpc.endpoint)}`);

  const httpPort = Number(flag(kvmp, 'http-port'));
  const prom = load<{ scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] }>(
    'prometheus.yaml',
  );
  const kvmpJob = prom.scrape_configs.find((j) => j.job_name === 'kvmp');
  t.deepEqual(kvmpJob?.static_configs[0].targets, [`kvmp:${httpPort}`], 'Prometheus scrapes kvmp /metrics');
  t.is(published(kvmp).get(httpPort), httpPort);
  t.is(flag(services.loadgen, 'connect'), `tcp://kvmp:${flag(kvmp, 'port')}`, 'the load generator reaches kvmp');

  const ds = load<{ datasources: { uid: string; url: string }[] }>('grafana/provisioning/datasources/datasources.yaml');
  const url = (uid: string): URL => new URL(ds.datasources.find((d) => d.uid === uid)?.url ?? '');
  t.is(url('prometheus').host, `prometheus:${[...published(services.prometheus).keys()][0]}`);
  t.is(url('tempo').host, `tempo:${tempo.server.http_listen_port}`);
});

test("the collector's pipelines use only defined receivers, processors and exporters", (t) => {
  const c = load<{
    receivers: Record<string, unknown>;
    processors: Record<string, unknown>;
    exporters: Record<string, unknown>;
    service: { pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }> };
  }>('otel-collector.yaml');
  t.truthy(c.service.pipelines.traces, 'a traces pipeline');
  t.true(c.service.pipelines.traces.exporters.includes('otlp/tempo'), 'traces go to Tempo');
  for (const [name, p] of Object.entries(c.service.pipelines)) {
    for (const r of p.receivers) t.truthy(c.receivers[r], `${name}: receiver ${r}`);
    for (const x of p.processors ?? []) t.truthy(c.processors[x], `${name}: processor ${x}`);
    for (const e of p.exporters) t.truthy(c.exporters[e], `${name}: exporter ${e}`);
  }
});

test('the dashboard uses the provisioned datasources and has a request traces panel', (t) => {
  const dash = JSON.parse(readFileSync(join(dir, 'grafana/dashboards/kvmp.json'), 'utf8')) as {
    panels: { type: string; datasource?: { uid: string }; targets?: { query?: string; expr?: string }[] }[];
  };
  const uids = new Set(dash.panels.filter((p) => p.type !== 'row').map((p) => p.datasource?.uid));
  t.deepEqual([...uids].sort(), ['prometheus', 'tempo']);
  const traces = dash.panels.find((p) => p.type === 'traces');
  t.is(traces?.targets?.[0].query, '{ name = "request" }');
});

const promtool = spawnSync('promtool', ['--version']).status === 0;
(promtool ? test : test.skip)('promtool accepts the Prometheus config', (t) => {
  const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yaml')], { encoding: 'utf8' });
  t.is(r.status, 0, r.stdout + r.stderr);
});
