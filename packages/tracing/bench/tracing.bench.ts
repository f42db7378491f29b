/**
 * `pnpm bench:tracing`: request trees per second through the whole tracing path
 * (publish on the main thread → SAB ring → drain thread → request spans → BatchSpanProcessor
 * → OTLP http/protobuf → receiver on 127.0.0.1), against the bare OTel SDK creating the
 * same 4 spans with the same attributes, processor settings and exporter in one thread.
 *
 * Not a test: prints the median of several alternating runs (the ratio is the median of the
 * per-pair ratios, each pair run back to back). `--json` makes the last line
 * `{"trees_per_s":…,"sdk_trees_per_s":…,"ratio":…}`. Options: `--trees N` (per run, default
 * 20,000), `--runs N` (default 7), `--budget N` (the pipeline's drainBudget, default 4096),
 * `--slice MS` (drainSliceMs, default 2), `--window N` (pacing window in spans, default 8192).
 *
 * Both sides are paced the same way: at most WINDOW spans created but not yet received,
 * because the BatchSpanProcessor drops spans once its queue is full, and a dropped span
 * would make the run never finish rather than look faster.
 */
import { Worker } from 'node:worker_threads';
import { type Attributes, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { readThreadCpu } from '../src/drain/thread-cpu.js';
import { type EpochTime, EventPipeline, now, requestTracingSubscriber } from '../src/index.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const JSON_OUT = args.includes('--json');
const TREES = flag('--trees', 20_000);
const RUNS = flag('--runs', 7);
const SPANS_PER_TREE = 4;
const WINDOW = flag('--window', 8192);
const BATCH = { maxQueueSize: 16384, maxExportBatchSize: 512, scheduledDelayMillis: 20, exportTimeoutMillis: 30000 };
const CONCURRENCY = 64;

// --- receiver on its own thread, so that decoding never competes with the measured thread --
const RECEIVER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const http = require('node:http');
import(workerData.proto).then(({ countSpans }) => {
  const counter = new Int32Array(workerData.sab);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      Atomics.add(counter, 0, countSpans(Buffer.concat(chunks)));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
});
`;

interface Receiver {
  readonly url: string;
  received(): number;
  close(): Promise<number>;
}

async function startReceiver(): Promise<Receiver> {
  const sab = new SharedArrayBuffer(4);
  const counter = new Int32Array(sab);
  const proto = new URL('../test/fixtures/otlp-proto.js', import.meta.url).href;
  const worker = new Worker(RECEIVER_SOURCE, { eval: true, workerData: { sab, proto } });
  const port = await new Promise<number>((resolve) => worker.once('message', resolve));
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    received: () => Atomics.load(counter, 0),
    close: () => worker.terminate(),
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the receiver holds `target` spans; fails loudly instead of hanging on a loss. */
async function awaitReceived(receiver: Receiver, target: number): Promise<void> {
  let last = receiver.received();
  let stalledSince = Date.now();
  while (receiver.received() < target) {
    await sleep(1);
    const n = receiver.received();
    if (n !== last) {
      last = n;
      stalledSince = Date.now();
    } else if (Date.now() - stalledSince > 10_000) {
      throw new Error(`receiver stalled at ${n}/${target} spans: spans were dropped`);
    }
  }
}

/** Keeps created-but-unreceived spans under the window (same pacing on both sides). */
async function pace(receiver: Receiver, createdSpans: number): Promise<void> {
  while (createdSpans - receiver.received() > WINDOW) await sleep(1);
}

const GPU = { device: 'cuda:0', engine_id: 'engine-0', model_name: 'llama-3-8b' };
const LP_END = {
  found_count: 12,
  requested_tokens: 1024,
  hit_tokens: 768,
  l1_hit_tokens: 512,
  l2_hit_tokens: 256,
  l1_hit_keys: 8,
  l2_hit_keys: 4,
  early_exit_reason: '',
};
const RETRIEVE_END = { ...GPU, retrieved_count: 12, total_bytes: 12 * 2 ** 20, num_tokens: 768, success: true };
const STORE_END = { ...GPU, stored_count: 4, total_bytes: 4 * 2 ** 20, num_tokens: 256, success: true };

// --- ours -----------------------------------------------------------------------------------

async function runOurs(pipeline: EventPipeline, receiver: Receiver, run: string, trees: number): Promise<number> {
  const pub = pipeline.publisher;
  const base = receiver.received();
  const start = performance.now();
  for (let i = 0; i < trees; i++) {
    if ((i & 255) === 0) {
      await pace(receiver, base + i * SPANS_PER_TREE);
      await tick();
    }
    const sid = `${run}-${i}`;
    const lp = pub.nextOpId();
    const r = pub.nextOpId();
    const s = pub.nextOpId();
    // A full ring drops (and counts) the event; the bench waits and republishes instead.
    const sends: (() => boolean)[] = [
      () => pub.publish('MP_REQUEST_START', sid, { model_name: 'llama-3-8b' }),
      () => pub.publish('MP_LOOKUP_PREFETCH_START', sid, {}, { opId: lp }),
      () => pub.publish('MP_LOOKUP_PREFETCH_END', sid, LP_END, { opId: lp }),
      () => pub.publish('MP_RETRIEVE_SUBMITTED', sid, { device: 'cuda:0' }, { opId: r }),
      () => pub.publish('MP_RETRIEVE_START', sid, GPU, { opId: r }),
      () => pub.publish('MP_RETRIEVE_END', sid, RETRIEVE_END, { opId: r }),
      () => pub.publish('MP_STORE_SUBMITTED', sid, { device: 'cuda:0' }, { opId: s }),
      () => pub.publish('MP_STORE_START', sid, GPU, { opId: s }),
      () => pub.publish('MP_STORE_END', sid, STORE_END, { opId: s }),
      () => pub.publish('MP_REQUEST_END', sid, {}),
    ];
    for (const send of sends) while (!send()) await tick();
  }
  await awaitReceived(receiver, base + trees * SPANS_PER_TREE);
  return (trees / (performance.now() - start)) * 1e3;
}

// --- the bare SDK ---------------------------------------------------------------------------

function sdkTracer(url: string) {
  const exporter = new OTLPTraceExporter({ url, concurrencyLimit: CONCURRENCY });
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter, BATCH)] });
  return { provider, tracer: provider.getTracer('bench-sdk') };
}

function advance(t: EpochTime, ns: number): EpochTime {
  const n = t[1] + ns;
  return [t[0] + Math.floor(n / 1e9), n % 1e9];
}

async function runSdk(
  tracer: ReturnType<typeof sdkTracer>['tracer'],
  receiver: Receiver,
  run: string,
  trees: number,
): Promise<number> {
  const base = receiver.received();
  let opId = 0;
  const start = performance.now();
  for (let i = 0; i < trees; i++) {
    if ((i & 255) === 0) {
      await pace(receiver, base + i * SPANS_PER_TREE);
      await tick();
    }
    const sid = `${run}-${i}`;
    // The same explicit-timestamp, explicit-parent pattern the subscriber uses.
    const t0 = now();
    const root = tracer.startSpan(
      'request',
      { startTime: t0, attributes: { session_id: sid, model_name: 'llama-3-8b' } },
      ROOT_CONTEXT,
    );
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    const lpAttrs: Attributes = { session_id: sid, op_id: ++opId, ...LP_END };
    const lp = tracer.startSpan('mp.lookup_prefetch', { startTime: advance(t0, 1000), attributes: lpAttrs }, ctx);
    lp.end(advance(t0, 2000));
    root.setAttributes({
      hit_tokens: 768,
      requested_tokens: 1024,
      hit_rate: 0.75,
      l1_hit_tokens: 512,
      l2_hit_tokens: 256,
      l1_hit_rate: 0.5,
      l2_hit_rate: 0.25,
      early_exit_reason: '',
    });
    const retrieve = tracer.startSpan(
      'mp.retrieve',
      { startTime: advance(t0, 3000), attributes: { session_id: sid, op_id: ++opId, ...GPU } },
      ctx,
    );
    retrieve.setAttributes(RETRIEVE_END);
    retrieve.end(advance(t0, 4000));
    const store = tracer.startSpan(
      'mp.store',
      { startTime: advance(t0, 5000), attributes: { session_id: sid, op_id: ++opId, ...GPU } },
      ctx,
    );
    store.setAttributes(STORE_END);
    store.end(advance(t0, 6000));
    root.end(advance(t0, 7000));
  }
  await awaitReceived(receiver, base + trees * SPANS_PER_TREE);
  return (trees / (performance.now() - start)) * 1e3;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main(): Promise<void> {
  const receiver = await startReceiver();
  const pipeline = new EventPipeline({
    drainBudget: flag('--budget', 4096),
    drainSliceMs: flag('--slice', 2),
    subscribers: [
      requestTracingSubscriber({
        exporter: 'otlp-proto',
        endpoint: receiver.url,
        batch: BATCH,
        concurrencyLimit: CONCURRENCY,
        sampler: { type: 'always_on' },
      }),
    ],
  });
  await pipeline.start();
  const sdk = sdkTracer(receiver.url);

  // Warm-up: JIT, HTTP keep-alive sockets, the drain thread's module graph.
  await runOurs(pipeline, receiver, 'warm', Math.min(5000, TREES));
  await runSdk(sdk.tracer, receiver, 'warm', Math.min(5000, TREES));

  const ours: number[] = [];
  const bare: number[] = [];
  // CPU per tree of the thread that does the work: the drain for kvmp, this thread for the
  // SDK (Linux only). Steadier than throughput on a shared machine, so it is printed too.
  const oursCpu: number[] = [];
  const bareCpu: number[] = [];
  const measureOurs = async (r: number): Promise<void> => {
    const before = (await pipeline.selfMetrics())?.drainCpuNs;
    ours.push(await runOurs(pipeline, receiver, `o${r}`, TREES));
    const after = (await pipeline.selfMetrics())?.drainCpuNs;
    if (before !== undefined && after !== undefined) oursCpu.push((after - before) / TREES / 1e3);
  };
  const measureSdk = async (r: number): Promise<void> => {
    const before = readThreadCpu()?.cpuNs;
    bare.push(await runSdk(sdk.tracer, receiver, `s${r}`, TREES));
    const after = readThreadCpu()?.cpuNs;
    if (before !== undefined && after !== undefined) bareCpu.push((after - before) / TREES / 1e3);
  };
  for (let r = 0; r < RUNS; r++) {
    // Alternate the order so that drift on a shared machine hits both sides alike.
    if (r % 2 === 0) {
      await measureOurs(r);
      await measureSdk(r);
    } else {
      await measureSdk(r);
      await measureOurs(r);
    }
    console.log(
      `run ${r + 1}/${RUNS}: kvmp ${ours[r].toFixed(0)} trees/s, bare SDK ${bare[r].toFixed(0)} trees/s, ratio ${(ours[r] / bare[r]).toFixed(3)}`,
    );
  }
  const metrics = await pipeline.stop();
  await sdk.provider.shutdown();
  await receiver.close();

  // The ratio is the median of per-pair ratios: each pair runs back to back, so drift in the
  // machine's load (it is shared) affects both sides of a pair alike.
  const pairRatios = ours.map((o, i) => o / bare[i]);
  const cpu =
    oursCpu.length === RUNS && bareCpu.length === RUNS
      ? {
          drain_cpu_us_per_tree: Number(median(oursCpu).toFixed(1)),
          sdk_cpu_us_per_tree: Number(median(bareCpu).toFixed(1)),
          cpu_ratio: Number(median(bareCpu.map((b, i) => b / oursCpu[i])).toFixed(3)),
        }
      : undefined;
  const result = {
    trees_per_s: Math.round(median(ours)),
    sdk_trees_per_s: Math.round(median(bare)),
    ratio: Number(median(pairRatios).toFixed(3)),
    ...cpu,
  };
  const lines = [
    `request trees (4 spans, 10 events each), ${TREES} per run, median of ${RUNS} runs, OTLP http/protobuf to 127.0.0.1`,
    `  kvmp (ring → drain → spans → OTLP): ${result.trees_per_s} trees/s (${result.trees_per_s * 10} events/s)`,
    `  bare OTel SDK, one thread:           ${result.sdk_trees_per_s} trees/s`,
    `  ratio (median of paired runs): ${result.ratio} (target ≥ 0.8); ratio of medians: ${(median(ours) / median(bare)).toFixed(3)}`,
    `  ring-full retries: ${metrics?.dropped ?? 'n/a'}`,
    cpu === undefined
      ? '  (per-thread CPU needs Linux /proc/thread-self/schedstat)'
      : `  CPU per tree: drain ${cpu.drain_cpu_us_per_tree} µs, SDK thread ${cpu.sdk_cpu_us_per_tree} µs (SDK ÷ drain ${cpu.cpu_ratio})`,
  ];
  for (const l of lines) console.log(l);
  if (JSON_OUT) console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
