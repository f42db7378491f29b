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
// Block ids: `shuffled` (a fragmented cache: every 16-token block is its own 32 KiB run per
// layer and K/V) is the reported case; `contiguous` (each chunk's blocks consecutive, as a fresh
// cache allocates them: 512 KiB runs) is reported alongside.
const shuffled = Array.from({ length: spec.numBlocks }, (_, i) => i);
let seed = 12345;
for (let i = shuffled.length - 1; i > 0; i--) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  const j = seed % (i + 1);
  [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
}
const bpc = chunkTokens / spec.blockSize;
const chunkOrder = shuffled.filter((b) => b < chunks);
const contiguous = chunkOrder.flatMap((c) => Array.from({ length: bpc }, (_, k) => c * bpc + k));
const refs: HostChunkRef[] = Array.from({ length: chunks }, (_, c) => ({ segment: 0, offset: c * chunkBytes }));
const base = {
  instanceId: 'bench',
  sessionId: 'bench',
  modelName: 'llama-8b-like',
  engineId: 'bench',
  chunkTokens,
  chunks: refs,
};

// Baseline: the same byte count as one typed-array copy per chunk, SharedArrayBuffer to SharedArrayBuffer.
const src = new Uint8Array(new SharedArrayBuffer(totalBytes)).fill(3);
const dst = new Uint8Array(new SharedArrayBuffer(totalBytes)).fill(4);
// Reference for the shuffled case: the same 32 KiB runs (same addresses, same order) copied with
// plain typed-array `set` calls on this thread, with no worker, validation or event machinery.
// The gap between it and memcpy is the cost of block-sized runs; the gap to store is our overhead.
const hostView = new Uint8Array(host);
const layerViews = layers.map((l) => new Uint8Array(l));
const blockBytes = spec.blockSize * layout.rowBytes;
const runsOnce = (): number => {
  const t0 = performance.now();
  for (let c = 0; c < chunks; c++) {
    for (let kv = 0; kv < 2; kv++) {
      for (let l = 0; l < spec.numLayers; l++) {
        const mem = layerViews[l];
        const h = c * chunkBytes + (kv * spec.numLayers + l) * chunkTokens * layout.rowBytes;
        for (let i = 0; i < bpc; i++) {
          const m = (kv * spec.numBlocks + shuffled[c * bpc + i]) * blockBytes;
          hostView.set(mem.subarray(m, m + blockBytes), h + i * blockBytes);
        }
      }
    }
  }
  return totalBytes / ((performance.now() - t0) * 1e6);
};
const memcpyOnce = (): number => {
  const t0 = performance.now();
  for (let c = 0; c < chunks; c++) dst.set(src.subarray(c * chunkBytes, (c + 1) * chunkBytes), c * chunkBytes);
  return totalBytes / ((performance.now() - t0) * 1e6);
};

const series = {
  store: [] as number[],
  retrieve: [] as number[],
  cstore: [] as number[],
  cretrieve: [] as number[],
  memcpy: [] as number[],
  runs: [] as number[],
};
let opId = 1;
const timed = async (kind: 'store' | 'retrieve', blockIds: number[]): Promise<number> => {
  const t0 = performance.now();
  const r =
    kind === 'store'
      ? await worker.store({ ...base, blockIds, opId: opId++ })
      : await worker.retrieve({ ...base, blockIds, opId: opId++ });
  if (!r.ok) throw new Error(`${kind} failed: ${r.error}`);
  return totalBytes / ((performance.now() - t0) * 1e6);
};
log(
  `layout: 32 layers × 8 heads × 128, bf16, block 16; ${chunks} chunks × ${chunkTokens} tokens = ${(totalBytes / 2 ** 20).toFixed(0)} MiB per op`,
);
memcpyOnce(); // warm-up
await timed('store', shuffled);
for (let r = 0; r < reps; r++) {
  // Interleaved so that machine noise (the host is shared) hits every series alike.
  series.memcpy.push(memcpyOnce());
  series.runs.push(runsOnce());
  series.store.push(await timed('store', shuffled));
  series.retrieve.push(await timed('retrieve', shuffled));
  series.cstore.push(await timed('store', contiguous));
  series.cretrieve.push(await timed('retrieve', contiguous));
}
await worker.close();
const memcpy = median(series.memcpy);
const ratio = (xs: number[]): number => +(median(xs) / memcpy).toFixed(3);
const result = {
  store_gbps: +median(series.store).toFixed(2),
  retrieve_gbps: +median(series.retrieve).toFixed(2),
  memcpy_gbps: +memcpy.toFixed(2),
  store_ratio: ratio(series.store),
  retrieve_ratio: ratio(series.retrieve),
  contiguous_store_gbps: +median(series.cstore).toFixed(2),
  contiguous_retrieve_gbps: +median(series.cretrieve).toFixed(2),
  contiguous_store_ratio: ratio(series.cstore),
  contiguous_retrieve_ratio: ratio(series.cretrieve),
  run_copy_gbps: +median(series.runs).toFixed(2),
  store_vs_run_copy: +(median(series.store) / median(series.runs)).toFixed(3),
  bytes_per_op: totalBytes,
  reps,
};
log(`store    ${result.store_gbps} GB/s  (${result.store_ratio} of memcpy)   shuffled block ids: 32 KiB runs`);
log(`retrieve ${result.retrieve_gbps} GB/s  (${result.retrieve_ratio} of memcpy)`);
log(
  `store    ${result.contiguous_store_gbps} GB/s  (${result.contiguous_store_ratio} of memcpy)   contiguous blocks per chunk: 512 KiB runs`,
);
log(`retrieve ${result.contiguous_retrieve_gbps} GB/s  (${result.contiguous_retrieve_ratio} of memcpy)`);
log(
  `runs     ${result.run_copy_gbps} GB/s  (the shuffled store's 32 KiB runs as plain set() calls on this thread; store = ${result.store_vs_run_copy} of it)`,
);
log(
  `memcpy   ${result.memcpy_gbps} GB/s  (typed-array copy of the same bytes, SharedArrayBuffer → SharedArrayBuffer, 32 MiB per call)`,
);
if (json) console.log(JSON.stringify(result));
