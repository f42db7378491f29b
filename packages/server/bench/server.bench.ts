/**
 * `pnpm bench:server [--json] [--runs N] [--requests N] [--concurrency N] [--exporter jsonl|none|off]
 *   [--mode plain|tracing] [--aa] [--threads] [--nap-ms N] [--layers N --heads N --head-size N --l1-mb N]`
 *
 * Not a test. Requests per second and p50/p99 latency of one request as an engine drives it —
 * lookup → queryPrefetchStatus → retrieve (hits) → store → endSession — on the cpu backend
 * (real GPU worker thread, real byte copies), 2048-token prompts, 70 % prefix-hit requests:
 * a hit request shares a cached 6-chunk (1536-token) prefix and adds 2 new chunks (retrieve 6,
 * store 2); a miss is a fresh prompt (store 8). Tracing on (event pipeline + request tracing
 * subscriber exporting every span) versus off, alternating run by run on ONE server: "off" is
 * `pipeline.pausePublishing()`, so both modes use the same threads and the same memory. (Two
 * servers, one per mode, looked fair but were not: in A/A runs — both servers plain — the
 * second server was faster by a median 2.6 % over 8 invocations, up to 7.6 %, a bias of the
 * instance (placement of its copy buffers) that no number of runs averages out.) `--aa` runs
 * both halves plain: the method's own noise floor. Also measures the actor runtime's overhead
 * per message and the piscina round trip that motivated keeping session state off the pool
 * (docs/design/actors.md).
 *
 * The last line with --json: {rps_tracing, rps_plain, p50_ms_tracing, p99_ms_tracing,
 * tracing_overhead_pct, ...}. `tracing_overhead_pct` is the median over run pairs (plain and tracing
 * run back to back) of the throughput lost with tracing on; the CPU cost per request of both modes
 * (all threads of the process) is reported too, since it is far less sensitive to a shared machine,
 * and so are the CPU of the server's main thread and of the drain thread (Linux). Defaults: 9 runs
 * of 3,000 requests per mode (shorter runs let the GPU worker's memcpy noise decide the ratio).
 * `--threads` prints the CPU of the busiest threads per run (Linux): the GPU worker's memcpy
 * thread is the bottleneck, so tracing work that lands on it (or slows it) shows there first.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readThreadCpu, requestTracingSubscriber } from '@kvmp/tracing';
import { ActorRegistry } from '../src/actors/actor-registry.js';
import { type CacheServer, ChunkHasher, createCacheServer, FakeEngine, fakePrompt, HashPool } from '../src/index.js';

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(`--${name}`);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const optStr = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? String(args[i + 1]) : dflt;
};

const JSON_OUT = flag('json');
const RUNS = opt('runs', 9);
const REQUESTS = opt('requests', 3000);
const CONCURRENCY = opt('concurrency', 16);
/** `none`: spans are built but not exported; `off`: events flow through the ring with no subscriber. */
const EXPORTER = optStr('exporter', 'jsonl') as 'jsonl' | 'none' | 'off';
/** Diagnostics: run one mode only (`plain` or `tracing`), e.g. under a profiler. */
const ONLY = optStr('mode', 'both');
/** A/A: both halves of every pair run plain, to show the method's noise floor. */
const AA = flag('aa');
const THREADS = flag('threads');
/** Drain-thread nap (ms) while events flow; default: the pipeline's. */
const NAP_MS = args.includes('--nap-ms') ? opt('nap-ms', 1) : undefined;
/**
 * KV shape of the fake engine (fp16). The default is deliberately tiny — 2 layers × 2 heads ×
 * 64, 256 KiB per chunk — so that per-request costs, tracing among them, are as large a share
 * of a request as they can be. `--layers 24 --heads 2 --head-size 64 --l1-mb 1024` is a
 * Qwen2.5-0.5B-sized cache (3 MiB per chunk), where the copies dominate.
 */
const LAYERS = opt('layers', 2);
const HEADS = opt('heads', 2);
const HEAD_SIZE = opt('head-size', 64);
const L1_MB = opt('l1-mb', 256);
const CHUNK = 256;
const PROMPT = 2048;
const PREFIX_CHUNKS = 6;
const HIT_FRACTION = 0.7;
const DOCUMENTS = 16;

const log = (...m: unknown[]): void => {
  if (!JSON_OUT) console.log(...m);
  else console.error(...m);
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

interface RunResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly hitTokenRatio: number;
  readonly evicted: number;
  /** CPU time of the whole process (every thread) per request, µs. */
  readonly cpuUsPerRequest: number;
  /** CPU time of this (the server's main) thread per request, µs; Linux only. */
  readonly mainCpuUsPerRequest: number | undefined;
  /** CPU time of the drain thread per request, µs (tracing on, Linux only). */
  readonly drainCpuUsPerRequest: number | undefined;
}

/** Cumulative CPU time (ns) of every thread of this process, by thread id (Linux). */
function threadCpuNs(): Map<string, number> {
  const cpu = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      cpu.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    }
  } catch {
    // not Linux, or a thread ended while listed
  }
  return cpu;
}

/** Deterministic xorshift so both modes see the same request mix. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

interface Target {
  readonly server: CacheServer;
  readonly engine: FakeEngine;
  readonly dir: string;
  readonly documents: readonly Uint32Array[];
}

/**
 * The one server both modes run on, with tracing configured; kept warm across runs (fresh
 * worker threads would run cold JIT code in the first timed run). Both modes see the same
 * request mix.
 */
async function startTarget(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'kvmp-bench-'));
  const engine = new FakeEngine({
    numLayers: LAYERS,
    numHeads: HEADS,
    headSize: HEAD_SIZE,
    blockSize: 16,
    numBlocks: (CONCURRENCY + 2) * (PROMPT / 16),
  });
  const server: CacheServer = await createCacheServer({
    chunkSize: CHUNK,
    l1: { capacityBytes: L1_MB * 1024 * 1024, segmentBytes: 32 * 1024 * 1024 },
    pool: { threads: 1 },
    tracing: {
      subscribers:
        EXPORTER === 'off' ? [] : [requestTracingSubscriber({ exporter: EXPORTER, file: join(dir, 'spans.jsonl') })],
      ...(NAP_MS === undefined ? {} : { napMs: NAP_MS }),
    },
  });
  await engine.register(server);
  const documents = Array.from({ length: DOCUMENTS }, (_, i) => fakePrompt(PREFIX_CHUNKS * CHUNK, 7_000 + i));
  return { server, engine, dir, documents };
}

async function stopTarget(t: Target): Promise<void> {
  await t.server.close();
  rmSync(t.dir, { recursive: true, force: true });
}

async function oneRun(target: Target, runIndex: number, tracing: boolean): Promise<RunResult> {
  const { server, engine, documents } = target;
  const pipeline = server.pipeline;
  if (pipeline === undefined) throw new Error('bench:server needs the server created with tracing');
  // Switched while no request is in flight, so no tree is cut in half.
  if (tracing) pipeline.resumePublishing();
  else pipeline.pausePublishing();
  // The shared prefixes are (re)stored first, as a previous run's eviction may have taken some.
  for (let i = 0; i < DOCUMENTS; i++) {
    await engine.runRequest(server, { requestId: `warm-${runIndex}-${i}`, tokens: documents[i], compute: false });
  }
  const rand = rng(12345);
  const prompts: Uint32Array[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const p = fakePrompt(PROMPT, 1_000_000 * (runIndex + 1) + i);
    if (rand() < HIT_FRACTION) p.set(documents[Math.floor(rand() * DOCUMENTS)]);
    prompts.push(p);
  }
  const lat = new Float64Array(REQUESTS);
  let next = 0;
  let hitTokens = 0;
  const client = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= REQUESTS) return;
      const t0 = performance.now();
      const rep = await engine.runRequest(server, {
        requestId: `r${runIndex}-${i}`,
        tokens: prompts[i],
        compute: false,
      });
      lat[i] = performance.now() - t0;
      hitTokens += rep.hitTokens;
    }
  };
  const evictedBefore = server.status().l1.evictedKeys;
  const drain0 = (await pipeline.selfMetrics())?.drainCpuNs;
  const main0 = readThreadCpu()?.cpuNs;
  const threads0 = THREADS ? threadCpuNs() : undefined;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const main1 = readThreadCpu()?.cpuNs;
  if (threads0 !== undefined) {
    const busiest = [...threadCpuNs()]
      .map(([tid, ns]) => (ns - (threads0.get(tid) ?? 0)) / 1000 / REQUESTS)
      .sort((a, b) => b - a)
      .slice(0, 5);
    log(`    busiest threads, µs/req: ${busiest.map((us) => us.toFixed(0)).join(' ')}`);
  }
  const drain1 = (await pipeline.selfMetrics())?.drainCpuNs;
  const perRequestUs = (a: number | undefined, b: number | undefined): number | undefined =>
    a === undefined || b === undefined ? undefined : (b - a) / REQUESTS / 1e3;
  lat.sort();
  return {
    rps: REQUESTS / elapsed,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    hitTokenRatio: hitTokens / (REQUESTS * PROMPT),
    evicted: server.status().l1.evictedKeys - evictedBefore,
    cpuUsPerRequest: (cpu.user + cpu.system) / REQUESTS,
    mainCpuUsPerRequest: perRequestUs(main0, main1),
    drainCpuUsPerRequest: perRequestUs(drain0, drain1),
  };
}

/** ns per message through an actor's mailbox vs a plain awaited call, and the pool round trip. */
async function actorOverhead(): Promise<{ actorNs: number; directNs: number; poolUs: number; hashUsPerChunk: number }> {
  const N = 200_000;
  const reg = new ActorRegistry<{ n: number }>(() => ({ n: 0 }));
  const handler = (s: { n: number }): number => ++s.n;
  const direct = async (s: { n: number }): Promise<number> => ++s.n;
  const state = { n: 0 };
  const actorRuns: number[] = [];
  const directRuns: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    let t0 = performance.now();
    for (let i = 0; i < N; i++) await reg.send('s', handler);
    actorRuns.push(((performance.now() - t0) * 1e6) / N);
    t0 = performance.now();
    for (let i = 0; i < N; i++) await direct(state);
    directRuns.push(((performance.now() - t0) * 1e6) / N);
  }
  const hasher = await ChunkHasher.create();
  const pool = new HashPool(hasher, { threads: 1 });
  for (let i = 0; i < 200; i++) await pool.noop();
  const poolRuns: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) await pool.noop();
    poolRuns.push(((performance.now() - t0) * 1000) / 1000);
  }
  await pool.close();
  const tokens = fakePrompt(64 * CHUNK, 1);
  const hashRuns: number[] = [];
  for (let rep = 0; rep < 7; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) hasher.hashChunks(hasher.chainStart, tokens, 0, CHUNK, 64);
    hashRuns.push(((performance.now() - t0) * 1000) / (20 * 64));
  }
  return {
    actorNs: median(actorRuns),
    directNs: median(directRuns),
    poolUs: median(poolRuns),
    hashUsPerChunk: median(hashRuns),
  };
}

async function main(): Promise<void> {
  log(
    `bench:server  runs=${RUNS} requests=${REQUESTS} concurrency=${CONCURRENCY} exporter=${EXPORTER}` +
      `  kv ${LAYERS} layers × ${HEADS} heads × ${HEAD_SIZE} (fp16), L1 ${L1_MB} MiB`,
  );
  log(
    `  prompts ${PROMPT} tokens, chunk ${CHUNK}, ${HIT_FRACTION * 100}% requests hit a ${PREFIX_CHUNKS}-chunk prefix`,
  );
  const ov = await actorOverhead();
  log(
    `  actor message ${ov.actorNs.toFixed(0)} ns (plain awaited call ${ov.directNs.toFixed(0)} ns, overhead ${(ov.actorNs - ov.directNs).toFixed(0)} ns);` +
      ` piscina round trip ${ov.poolUs.toFixed(1)} µs; BLAKE3 ${ov.hashUsPerChunk.toFixed(2)} µs per 256-token chunk`,
  );
  const target = await startTarget();
  const plain: RunResult[] = [];
  const traced: RunResult[] = [];
  const modes = (['plain', 'tracing'] as const).filter((m) => ONLY === 'both' || ONLY === m);
  try {
    // Warm-up (JIT in every thread, both modes), not counted.
    for (const m of modes) await oneRun(target, 100, m === 'tracing' && !AA);
    for (let r = 0; r < RUNS; r++) {
      // Alternate the order so drift on the shared machine hits both modes alike.
      for (const m of r % 2 === 0 ? modes : [...modes].reverse()) {
        const tracing = m === 'tracing' && !AA;
        const res = await oneRun(target, r, tracing);
        (m === 'tracing' ? traced : plain).push(res);
        log(
          `  run ${r} ${m === 'tracing' ? (AA ? 'plain B' : 'tracing') : 'plain  '}: ${res.rps.toFixed(0)} req/s  p50 ${res.p50.toFixed(2)} ms  p99 ${res.p99.toFixed(2)} ms` +
            `  cpu ${res.cpuUsPerRequest.toFixed(0)} µs/req (main ${res.mainCpuUsPerRequest?.toFixed(0) ?? '?'}` +
            `${tracing ? `, drain ${res.drainCpuUsPerRequest?.toFixed(0) ?? '?'}` : ''})  hit tokens ${(res.hitTokenRatio * 100).toFixed(1)}%  evicted ${res.evicted}`,
        );
      }
    }
  } finally {
    await stopTarget(target);
  }
  if (plain.length === 0 || traced.length === 0) return;
  const rpsPlain = median(plain.map((r) => r.rps));
  const rpsTracing = median(traced.map((r) => r.rps));
  // Runs of a pair are adjacent in time, so their ratio cancels most of the drift of a shared
  // machine; the median over pairs is the robust overhead estimate.
  const paired = plain.map((p, i) => ((p.rps - traced[i].rps) / p.rps) * 100);
  const cpuPlain = median(plain.map((r) => r.cpuUsPerRequest));
  const cpuTracing = median(traced.map((r) => r.cpuUsPerRequest));
  const optMedian = (xs: (number | undefined)[]): number | undefined =>
    xs.every((x) => x !== undefined) ? Math.round(median(xs as number[])) : undefined;
  const out = {
    rps_tracing: Math.round(rpsTracing),
    rps_plain: Math.round(rpsPlain),
    p50_ms_tracing: +median(traced.map((r) => r.p50)).toFixed(3),
    p99_ms_tracing: +median(traced.map((r) => r.p99)).toFixed(3),
    tracing_overhead_pct: +median(paired).toFixed(2),
    tracing_overhead_pct_of_medians: +(((rpsPlain - rpsTracing) / rpsPlain) * 100).toFixed(2),
    cpu_us_per_request_plain: Math.round(cpuPlain),
    cpu_us_per_request_tracing: Math.round(cpuTracing),
    tracing_cpu_overhead_pct: +(((cpuTracing - cpuPlain) / cpuPlain) * 100).toFixed(2),
    main_cpu_us_per_request_plain: optMedian(plain.map((r) => r.mainCpuUsPerRequest)),
    main_cpu_us_per_request_tracing: optMedian(traced.map((r) => r.mainCpuUsPerRequest)),
    drain_cpu_us_per_request: optMedian(traced.map((r) => r.drainCpuUsPerRequest)),
    p50_ms_plain: +median(plain.map((r) => r.p50)).toFixed(3),
    p99_ms_plain: +median(plain.map((r) => r.p99)).toFixed(3),
    actor_ns_per_message: Math.round(ov.actorNs),
    actor_overhead_ns_per_message: Math.round(ov.actorNs - ov.directNs),
    pool_round_trip_us: +ov.poolUs.toFixed(1),
    hash_us_per_chunk: +ov.hashUsPerChunk.toFixed(2),
    hit_token_ratio: +median(traced.map((r) => r.hitTokenRatio)).toFixed(3),
    runs: RUNS,
    requests: REQUESTS,
    concurrency: CONCURRENCY,
    exporter: EXPORTER,
    kv_bytes_per_chunk: LAYERS * 2 * HEADS * HEAD_SIZE * 2 * CHUNK,
    method: AA ? 'a/a: one server, both halves plain' : 'one server, publishing paused for plain',
  };
  log(
    `median: plain ${out.rps_plain} req/s, tracing ${out.rps_tracing} req/s; throughput overhead ${out.tracing_overhead_pct}%` +
      ` (median of paired runs); CPU ${out.cpu_us_per_request_plain} → ${out.cpu_us_per_request_tracing} µs/req (+${out.tracing_cpu_overhead_pct}%);` +
      ` tracing p50 ${out.p50_ms_tracing} ms p99 ${out.p99_ms_tracing} ms`,
  );
  if (JSON_OUT) console.log(JSON.stringify(out));
}

await main();
