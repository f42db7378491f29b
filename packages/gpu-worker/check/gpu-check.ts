/**
 * scripts/gpu-check's program: the cuda backend end to end on a real GPU. An engine process
 * allocates a paged flash-attn KV cache (bf16, 32 layers, 8 heads × 128, block 16) and exports it
 * over CUDA IPC; this process stores 256-token chunks of it into pinned host memory through the
 * GPU worker (waiting on the engine's IPC event), verifies every stored byte, retrieves them into
 * other blocks with a skip-first-N, has the engine verify every block, and reports GB/s next to
 * plain cuMemcpy of the same bytes (device ↔ pinned host). `--small` shrinks it for dry runs.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type CopyResult, type GpuWorker, isCudaUnavailable, type KvLayoutSpec, spawnGpuWorker } from '../src/index.js';
import { type CheckShape, type EngineReply, type EngineRequest, patternWord } from './pattern.js';

const small = process.argv.includes('--small');
const reps = small ? 2 : 5;
const shape: CheckShape = small
  ? { numLayers: 4, numBlocks: 40, blockSize: 16, numHeads: 2, headSize: 64, chunkTokens: 64, chunks: 4 }
  : { numLayers: 32, numBlocks: 1024, blockSize: 16, numHeads: 8, headSize: 128, chunkTokens: 256, chunks: 16 };
const spec: KvLayoutSpec = { kind: 'flash_attn', dtype: 'bf16', ...shape };

let step = 'start';
const say = (line: string): void => console.log(`[gpu-check] ${line}`);
const fail = (message: string): never => {
  console.log(`[gpu-check] FAIL at ${step}: ${message}`);
  console.log('GPU CHECK FAILED');
  process.exit(1);
};
const watchdog = setTimeout(() => fail('timed out after 300 s'), 300_000);
watchdog.unref();

function rngShuffle(n: number, seed: number): number[] {
  const ids = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids;
}

/** Sends `request` (none: just wait, e.g. for `ready`) and resolves with the engine's reply. */
function engineCall(
  engine: ChildProcess,
  request: EngineRequest | undefined,
  expect: EngineReply['type'],
): Promise<EngineReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: EngineReply): void => {
      engine.off('exit', onExit);
      if (reply.type === 'error') reject(new Error(`engine: ${reply.message}`));
      else if (reply.type !== expect) reject(new Error(`engine replied ${reply.type}, expected ${expect}`));
      else resolve(reply);
    };
    const onExit = (code: number | null): void => reject(new Error(`engine process exited (${code})`));
    engine.once('message', onMessage);
    engine.once('exit', onExit);
    if (request !== undefined) engine.send(request);
  });
}

const gbps = (r: CopyResult): number => r.bytes / (r.endNs - r.startNs);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  say(`node ${process.version}, ${small ? 'small' : 'full'} shape: ${JSON.stringify(shape)}`);
  step = 'start the GPU worker (cuda backend)';
  let gpu: GpuWorker;
  try {
    gpu = await spawnGpuWorker({ backend: 'cuda', device: 0 });
  } catch (error) {
    if (isCudaUnavailable(error)) fail((error as Error).message);
    throw error;
  }
  say(`device: ${(await gpu.info()).device}`);

  step = 'start the engine process';
  const engine = fork(fileURLToPath(new URL('./engine-process.js', import.meta.url)), [JSON.stringify(shape)], {
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await engineCall(engine, undefined, 'ready');
  if (ready.type !== 'ready') return;
  say(`engine process ready on ${ready.device}: ${shape.numLayers} layers exported over CUDA IPC`);

  step = 'register host memory and the KV cache';
  const layout = await gpu.registerKvCache('gpu-check', spec, {
    backend: 'cuda',
    layers: ready.layerHandles.map((hex) => ({ ipcHandle: new Uint8Array(Buffer.from(hex, 'hex')), offset: 0 })),
  });
  const chunkBytes = layout.bytesPerToken * shape.chunkTokens;
  const totalBytes = chunkBytes * shape.chunks;
  const host = new SharedArrayBuffer(totalBytes);
  await gpu.registerHostMemory([host]);
  say(
    `${(totalBytes / 2 ** 20).toFixed(0)} MiB per operation (${shape.chunks} chunks × ${shape.chunkTokens} tokens), host memory pinned`,
  );

  const bpc = shape.chunkTokens / shape.blockSize;
  const perm = rngShuffle(shape.numBlocks, 42);
  const source = perm.slice(0, shape.chunks * bpc);
  const target = perm.slice(shape.chunks * bpc, 2 * shape.chunks * bpc);
  const chunks = Array.from({ length: shape.chunks }, (_, c) => ({ segment: 0, offset: c * chunkBytes }));
  let opId = 1;
  const base = {
    instanceId: 'gpu-check',
    sessionId: 'gpu-check',
    modelName: 'gpu-check',
    engineId: 'engine',
    chunkTokens: shape.chunkTokens,
    chunks,
  };

  step = 'store (waiting on the engine IPC event)';
  const first = await gpu.store({
    ...base,
    opId: opId++,
    blockIds: source,
    waitEvent: new Uint8Array(Buffer.from(ready.forwardDone, 'hex')),
  });
  if (!first.ok) fail(first.error ?? 'store failed');

  step = 'verify stored bytes';
  const words = new Uint32Array(host);
  const rowWords = layout.rowBytes / 4;
  let mismatches = 0;
  for (let c = 0; c < shape.chunks; c++) {
    for (let kv = 0; kv < 2; kv++) {
      for (let l = 0; l < shape.numLayers; l++) {
        for (let t = 0; t < shape.chunkTokens; t++) {
          const block = source[c * bpc + Math.floor(t / shape.blockSize)];
          const at = (c * chunkBytes) / 4 + ((kv * shape.numLayers + l) * shape.chunkTokens + t) * rowWords;
          const want = ((kv * shape.numBlocks + block) * shape.blockSize + (t % shape.blockSize)) * rowWords;
          for (let w = 0; w < rowWords; w++) if (words[at + w] !== patternWord(l, want + w)) mismatches++;
        }
      }
    }
  }
  if (mismatches > 0) fail(`${mismatches} of ${totalBytes / 4} stored words differ`);
  say(`store verified: all ${totalBytes} bytes match the engine's KV`);

  step = 'retrieve with skip-first-N and verify every target block in the engine';
  const skip = shape.blockSize + 5;
  const back = await gpu.retrieve({ ...base, opId: opId++, blockIds: target, skipFirstTokens: skip });
  if (!back.ok) fail(back.error ?? 'retrieve failed');
  const verified = await engineCall(
    engine,
    { type: 'verify', mapping: target.map((t, j) => [t, source[j]] as const), skipTokens: skip },
    'verified',
  );
  if (verified.type !== 'verified') return;
  if (verified.mismatches > 0) fail(`${verified.mismatches} retrieved words differ (first: ${verified.firstMismatch})`);
  say(
    `retrieve verified: ${verified.checkedBytes} bytes in ${target.length} blocks, first ${skip} tokens left untouched`,
  );

  step = 'time store and retrieve';
  const store: number[] = [gbps(first)];
  const retrieve: number[] = [];
  for (let r = 0; r < reps; r++) {
    const s = await gpu.store({ ...base, opId: opId++, blockIds: source });
    const g = await gpu.retrieve({ ...base, opId: opId++, blockIds: target });
    if (!s.ok || !g.ok) fail(s.error ?? g.error ?? 'copy failed');
    store.push(gbps(s));
    retrieve.push(gbps(g));
  }

  // Completion latency of the polling policy (completion-poller.ts): wall time from the call to
  // its resolution on this thread, minus the GPU-timed copy. One chunk per operation, so the
  // fixed costs (validation, postMessage both ways, kernel launch, the poll that sees the event)
  // are not hidden behind a long copy. CPU is this whole process (this thread + the GPU worker).
  step = 'completion latency, one chunk per operation';
  const latencyOps = small ? 20 : 200;
  const one = { ...base, chunks: chunks.slice(0, 1) };
  const overheadUs: number[] = [];
  const wallUs: number[] = [];
  const cpuBefore = process.cpuUsage();
  for (let r = 0; r < latencyOps; r++) {
    const t0 = performance.now();
    const g = await gpu.retrieve({ ...one, opId: opId++, blockIds: target.slice(0, bpc) });
    const wall = (performance.now() - t0) * 1000;
    if (!g.ok) fail(g.error ?? 'retrieve failed');
    wallUs.push(wall);
    overheadUs.push(wall - (g.endNs - g.startNs) / 1000);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];
  const latency = {
    one_chunk_wall_us_p50: +median(wallUs).toFixed(1),
    one_chunk_overhead_us_p50: +median(overheadUs).toFixed(1),
    one_chunk_overhead_us_p99: +p99(overheadUs).toFixed(1),
    process_cpu_us_per_op: +((cpu.user + cpu.system) / latencyOps).toFixed(1),
  };
  say(
    `one-chunk retrieve: wall p50 ${latency.one_chunk_wall_us_p50} µs, above GPU time p50 ${latency.one_chunk_overhead_us_p50} / p99 ${latency.one_chunk_overhead_us_p99} µs, process CPU ${latency.process_cpu_us_per_op} µs/op`,
  );

  step = 'cuMemcpy baseline in the engine process';
  const baseline = await engineCall(engine, { type: 'baseline', bytes: totalBytes, reps }, 'baseline');
  if (baseline.type !== 'baseline') return;

  step = 'driver call timings in the engine process';
  const driver = await engineCall(engine, { type: 'driverTimings', reps: small ? 20 : 200 }, 'driverTimings');
  if (driver.type !== 'driverTimings') return;
  say(
    `driver calls, median µs: ${Object.entries(driver.us)
      .map(([name, us]) => `${name} ${us}`)
      .join(', ')}`,
  );

  step = 'close';
  await gpu.close();
  engine.send({ type: 'exit' } satisfies EngineRequest);

  const result = {
    device: ready.device,
    bytes_per_op: totalBytes,
    store_gbps: +median(store).toFixed(2),
    retrieve_gbps: +median(retrieve).toFixed(2),
    memcpy_d2h_gbps: +baseline.d2hGbps.toFixed(2),
    memcpy_h2d_gbps: +baseline.h2dGbps.toFixed(2),
    store_ratio: +(median(store) / baseline.d2hGbps).toFixed(3),
    retrieve_ratio: +(median(retrieve) / baseline.h2dGbps).toFixed(3),
    verified_bytes: totalBytes + verified.checkedBytes,
    ...latency,
    driver_us: driver.us,
  };
  say(
    `store    ${result.store_gbps} GB/s (GPU-timed)   vs cuMemcpy D2H ${result.memcpy_d2h_gbps} GB/s  ratio ${result.store_ratio}`,
  );
  say(
    `retrieve ${result.retrieve_gbps} GB/s (GPU-timed)   vs cuMemcpy H2D ${result.memcpy_h2d_gbps} GB/s  ratio ${result.retrieve_ratio}`,
  );
  console.log(JSON.stringify(result));
  console.log('GPU CHECK PASSED');
  clearTimeout(watchdog);
}

main().catch((error: unknown) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));
