/**
 * bench:copy — cpu backend store/retrieve GB/s through the real GPU worker thread, for 256-token
 * chunks of a Llama-8B-like layout (32 layers, 8 KV heads × 128, bf16, block 16), against a plain
 * typed-array copy of the same number of bytes between SharedArrayBuffers in the same run.
 * `--json`: the last line is `{store_gbps, retrieve_gbps, memcpy_gbps, store_ratio, retrieve_ratio, ...}`.
 */
import { performance } from 'node:perf_hooks';
import { type HostChunkRef, type KvLayoutSpec, spawnGpuWorker } from '../src/index.js';

const json = process.argv.includes('--json');
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const chunks = arg('chunks', 8);
const reps = arg('reps', 7);
const chunkTokens = 256;
const spec: KvLayoutSpec = {
  kind: 'flash_attn',
  numLayers: 32,
  numBlocks: (chunks * chunkTokens) / 16,
  blockSize: 16,
  numHeads: 8,
  headSize: 128,
  dtype: 'bf16',
};

const log = (line: string): void => {
  if (!json) console.log(line);
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const worker = await spawnGpuWorker({ backend: 'cpu' });
const layers: SharedArrayBuffer[] = [];
const layerBytes = 2 * spec.numBlocks * spec.blockSize * 8 * 128 * 2;
for (let l = 0; l < spec.numLayers; l++) {
  const sab = new SharedArrayBuffer(layerBytes);
  new Uint8Array(sab).fill(l + 1); // touch every page before timing
  layers.push(sab);
}
const layout = await worker.registerKvCache('bench', spec, { backend: 'cpu', layers });
const chunkBytes = layout.bytesPerToken * chunkTokens;
const totalBytes = chunkBytes * chunks;
const host = new SharedArrayBuffer(totalBytes);
new Uint8Array(host).fill(7);
await worker.registerHostMemory([host]);
// Engine allocators hand out scattered blocks: shuffle ids deterministically.
const ids = Array.from({ length: spec.numBlocks }, (_, i) => i);
let seed = 12345;
for (let i = ids.length - 1; i > 0; i--) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  const j = seed % (i + 1);
  [ids[i], ids[j]] = [ids[j], ids[i]];
}
const refs: HostChunkRef[] = Array.from({ length: chunks }, (_, c) => ({ segment: 0, offset: c * chunkBytes }));
const base = {
  instanceId: 'bench',
  sessionId: 'bench',
  modelName: 'llama-8b-like',
  engineId: 'bench',
  blockIds: ids,
  chunkTokens,
  chunks: refs,
};

// Baseline: the same byte count as one typed-array copy per chunk, SharedArrayBuffer to SharedArrayBuffer.
const src = new Uint8Array(new SharedArrayBuffer(totalBytes)).fill(3);
const dst = new Uint8Array(new SharedArrayBuffer(totalBytes)).fill(4);
const memcpyOnce = (): number => {
  const t0 = performance.now();
  for (let c = 0; c < chunks; c++) dst.set(src.subarray(c * chunkBytes, (c + 1) * chunkBytes), c * chunkBytes);
  return totalBytes / ((performance.now() - t0) * 1e6);
};

const store: number[] = [];
const retrieve: number[] = [];
const memcpy: number[] = [];
let opId = 1;
log(
  `layout: 32 layers × 8 heads × 128, bf16, block 16; ${chunks} chunks × ${chunkTokens} tokens = ${(totalBytes / 2 ** 20).toFixed(0)} MiB per op`,
);
memcpyOnce(); // warm-up
for (let r = 0; r < reps; r++) {
  // Interleaved so that machine noise hits all three alike.
  memcpy.push(memcpyOnce());
  let t0 = performance.now();
  const s = await worker.store({ ...base, opId: opId++ });
  if (!s.ok) throw new Error(`store failed: ${s.error}`);
  store.push(totalBytes / ((performance.now() - t0) * 1e6));
  t0 = performance.now();
  const g = await worker.retrieve({ ...base, opId: opId++ });
  if (!g.ok) throw new Error(`retrieve failed: ${g.error}`);
  retrieve.push(totalBytes / ((performance.now() - t0) * 1e6));
}
await worker.close();

const result = {
  store_gbps: +median(store).toFixed(2),
  retrieve_gbps: +median(retrieve).toFixed(2),
  memcpy_gbps: +median(memcpy).toFixed(2),
  store_ratio: +(median(store) / median(memcpy)).toFixed(3),
  retrieve_ratio: +(median(retrieve) / median(memcpy)).toFixed(3),
  bytes_per_op: totalBytes,
  reps,
};
log(`store    ${result.store_gbps} GB/s  (${result.store_ratio} of memcpy)`);
log(`retrieve ${result.retrieve_gbps} GB/s  (${result.retrieve_ratio} of memcpy)`);
log(`memcpy   ${result.memcpy_gbps} GB/s  (typed-array copy of the same bytes, SAB → SAB)`);
if (json) console.log(JSON.stringify(result));
