/**
 * `pnpm bench:wire [--json] [--runs N] [--requests N] [--concurrency N] [--prompt-tokens N]`
 *
 * Not a test. Requests per second of the engine flow lookup → query → retrieve (hit prefix) →
 * store (the rest) → end, with 2048-token prompts (256-token chunks of 512 KiB: 4 layers, 4
 * heads of 32, fp16) whose first half is one of 8 shared prefixes, so a steady-state request
 * retrieves 4 chunks and stores 4 (2 MiB each way).
 *
 * - wire: `kvmp serve` in a child process (cpu backend, metrics/logging off) and a KvmpClient
 *   in this process in engine-driven mode: KV bytes travel in the messages over ZMQ tcp on
 *   127.0.0.1 (DemoEngine: computes the stored chunks, verifies the retrieved ones).
 * - inproc: the same flow against `createCacheServer` in this process (FakeEngine: computes
 *   and verifies KV in its SharedArrayBuffer blocks; the GPU worker thread copies).
 *
 * Runs alternate (inproc, wire, inproc, ...) and the medians are reported. The last line with
 * --json: {wire_rps, inproc_rps, ratio}.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEMO_LAYOUT, DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { KvmpClient } from '../src/client/kvmp-client.js';
import { createCacheServer, FakeEngine } from '../src/index.js';

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(`--${name}`);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};

const JSON_OUT = flag('json');
const RUNS = opt('runs', 3);
const REQUESTS = opt('requests', 300);
const CONCURRENCY = opt('concurrency', 4);
const PROMPT = opt('prompt-tokens', 2048);
const CHUNK = 256;
const PREFIXES = 8;
const L1_GB = 0.5;

const log = (line: string) => {
  if (!JSON_OUT) process.stdout.write(`${line}\n`);
  else process.stderr.write(`${line}\n`);
};

type RunOne = (id: string, prompt: Uint32Array) => Promise<{ corrupt: number }>;

let seq = 0;
async function drive(run: RunOne, requests: number): Promise<number> {
  let next = 0;
  let corrupt = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < requests) {
      const i = next++;
      const s = ++seq;
      const r = await run(`b-${s}`, demoPrompt(i % PREFIXES, s, PROMPT, PROMPT / 2));
      corrupt += r.corrupt;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  if (corrupt > 0) throw new Error(`${corrupt} corrupt chunks/tokens`);
  return requests / ((performance.now() - t0) / 1000);
}

async function startServe(): Promise<{ child: ChildProcess; endpoint: string }> {
  const bin = fileURLToPath(new URL('../../bin/kvmp.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      bin,
      'serve',
      '--port',
      '0',
      '--no-http',
      '--disable-metrics',
      '--disable-logging',
      '--log-level',
      'warn',
      '--chunk-size',
      String(CHUNK),
      '--l1-size-gb',
      String(L1_GB),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('kvmp ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`kvmp serve exited ${code}: ${out}`)));
  });
  const endpoint = /zmq\s+(\S+)/.exec(out)?.[1];
  if (endpoint === undefined) throw new Error('no endpoint in the start-up lines');
  return { child, endpoint };
}

async function main(): Promise<void> {
  log(
    `bench:wire  ${PROMPT}-token prompts, ${CHUNK}-token chunks, concurrency ${CONCURRENCY}, ${REQUESTS} requests x ${RUNS} runs`,
  );
  // In-process server and engine.
  const core = await createCacheServer({ chunkSize: CHUNK, l1: { capacityBytes: L1_GB * 1024 ** 3 } });
  const fake = new FakeEngine({
    instanceId: 'inproc',
    modelName: 'demo-model',
    numLayers: DEMO_LAYOUT.numLayers,
    numHeads: DEMO_LAYOUT.numHeads,
    headSize: DEMO_LAYOUT.headSize,
    blockSize: DEMO_LAYOUT.blockSize,
    dtype: DEMO_LAYOUT.dtype,
    numBlocks: (CONCURRENCY + 1) * Math.ceil(PROMPT / DEMO_LAYOUT.blockSize),
  });
  await fake.register(core);
  const inproc: RunOne = async (id, prompt) => ({
    corrupt: (await fake.runRequest(core, { requestId: id, tokens: prompt })).corruptTokens,
  });

  // Wire: kvmp serve child + client here.
  const serve = await startServe();
  const client = await KvmpClient.connect({ endpoint: serve.endpoint, heartbeatIntervalMs: 0, timeoutMs: 60_000 });
  const demo = new DemoEngine(client, { instanceId: 'wire', modelName: 'demo-model' });
  await demo.register();
  const wire: RunOne = async (id, prompt) => ({ corrupt: (await demo.runRequest(id, prompt)).corruptChunks });

  try {
    // Warm-up: JIT, prefixes cached on both servers.
    await drive(inproc, 2 * PREFIXES);
    await drive(wire, 2 * PREFIXES);
    const w: number[] = [];
    const p: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      p.push(await drive(inproc, REQUESTS));
      w.push(await drive(wire, REQUESTS));
      log(`  run ${r + 1}: inproc ${p[r].toFixed(1)} req/s, wire ${w[r].toFixed(1)} req/s`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const wireRps = median(w);
    const inprocRps = median(p);
    const mib = (PROMPT / CHUNK / 2) * 0.5 * 2;
    log(`wire   ${wireRps.toFixed(1)} req/s (${(wireRps * mib).toFixed(0)} MiB/s of KV over the socket)`);
    log(`inproc ${inprocRps.toFixed(1)} req/s`);
    log(`ratio  ${(wireRps / inprocRps).toFixed(3)}  (wire / in-process; shared machine: compare within one run only)`);
    if (JSON_OUT) {
      process.stdout.write(
        `${JSON.stringify({ wire_rps: round(wireRps), inproc_rps: round(inprocRps), ratio: round(wireRps / inprocRps, 3), prompt_tokens: PROMPT, concurrency: CONCURRENCY, requests: REQUESTS, runs: RUNS })}\n`,
      );
    }
  } finally {
    client.close();
    const exited = new Promise((r) => serve.child.once('exit', r));
    serve.child.kill('SIGTERM');
    await exited;
    await core.close();
  }
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

main().catch((err) => {
  process.stderr.write(`bench:wire failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
