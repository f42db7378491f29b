/**
 * scripts/gpu-check's stand-in inference engine, a separate process (CUDA IPC handles cannot be
 * opened by the process that exported them): allocates a paged flash-attn KV cache, fills it
 * with a known pattern, exports per-layer IPC memory handles and a "forward pass done" IPC
 * event, and on request verifies retrieved blocks and times plain cuMemcpy for the baseline.
 */
import { performance } from 'node:perf_hooks';
import {
  CU_EVENT_DEFAULT,
  CU_EVENT_DISABLE_TIMING,
  CU_EVENT_INTERPROCESS,
  CU_MEMHOSTREGISTER_PORTABLE,
  loadCudaDriver,
} from '../src/cuda/driver.js';
import { type CheckShape, type EngineReply, type EngineRequest, fillPattern, patternWord } from './pattern.js';

const send = (reply: EngineReply): void => {
  process.send?.(reply);
};

const shape = JSON.parse(process.argv[2]) as CheckShape;
const rowBytes = shape.numHeads * shape.headSize * 2; // bf16
const blockBytes = shape.blockSize * rowBytes;
const layerBytes = 2 * shape.numBlocks * blockBytes;

try {
  const cuda = loadCudaDriver();
  const dev = cuda.deviceGet(0);
  cuda.ctxSetCurrent(cuda.primaryCtxRetain(dev));
  const stream = cuda.streamCreate(0);
  const layers = Array.from({ length: shape.numLayers }, () => cuda.memAlloc(layerBytes));
  const host = new Uint32Array(layerBytes / 4);
  layers.forEach((ptr, l) => {
    fillPattern(l, 0, host);
    cuda.memcpyHtoD(ptr, new Uint8Array(host.buffer));
  });
  const forwardDone = cuda.eventCreate(CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS);
  cuda.eventRecord(forwardDone, stream);
  send({
    type: 'ready',
    device: cuda.deviceName(dev),
    layerHandles: layers.map((ptr) => Buffer.from(cuda.ipcGetMemHandle(ptr)).toString('hex')),
    forwardDone: Buffer.from(cuda.ipcGetEventHandle(forwardDone)).toString('hex'),
  });

  /**
   * What the driver calls the cuda backend makes per operation cost here, median µs each: the
   * one-chunk completion overhead measured by gpu-check is far above two thread hops and a
   * launch, and these say which calls to pool or cache.
   */
  const driverTimings = (reps: number): Record<string, number> => {
    const samples: Record<string, number[]> = {};
    const time = (name: string, fn: () => void): void => {
      const t0 = performance.now();
      fn();
      const us = (performance.now() - t0) * 1000;
      const list = samples[name];
      if (list === undefined) samples[name] = [us];
      else list.push(us);
    };
    const ipcFlags = CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
    for (let r = 0; r < reps; r++) {
      let timing = cuda.eventCreate(CU_EVENT_DEFAULT);
      time('event_create_timing', () => {
        cuda.eventDestroy(timing);
        timing = cuda.eventCreate(CU_EVENT_DEFAULT);
      });
      let ipc = cuda.eventCreate(ipcFlags);
      time('event_create_ipc', () => {
        cuda.eventDestroy(ipc);
        ipc = cuda.eventCreate(ipcFlags);
      });
      time('event_record', () => cuda.eventRecord(timing, stream));
      cuda.eventRecord(ipc, stream);
      time('ipc_get_event_handle', () => cuda.ipcGetEventHandle(ipc));
      cuda.streamSynchronize(stream);
      time('event_query_done', () => cuda.eventQuery(timing));
      cuda.eventDestroy(timing);
      cuda.eventDestroy(ipc);
    }
    const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    return Object.fromEntries(Object.entries(samples).map(([name, xs]) => [name, +median(xs).toFixed(2)]));
  };

  process.on('message', (request: EngineRequest) => {
    try {
      if (request.type === 'exit') {
        for (const ptr of layers) cuda.memFree(ptr);
        process.exit(0);
      }
      if (request.type === 'verify') {
        // Block `target` must now hold what block `source` held (the pattern at the source's
        // position), except the first skipTokens tokens of the op, which keep their own pattern.
        const back = new Uint8Array(layerBytes);
        const words = new Uint32Array(back.buffer);
        let mismatches = 0;
        let firstMismatch: string | undefined;
        const rowWords = rowBytes / 4;
        layers.forEach((ptr, l) => {
          cuda.memcpyDtoH(back, ptr);
          request.mapping.forEach(([target, source], j) => {
            for (let kv = 0; kv < 2; kv++) {
              for (let t = 0; t < shape.blockSize; t++) {
                const token = j * shape.blockSize + t;
                const from = token < request.skipTokens ? target : source;
                const at = ((kv * shape.numBlocks + target) * shape.blockSize + t) * rowWords;
                const want = ((kv * shape.numBlocks + from) * shape.blockSize + t) * rowWords;
                for (let w = 0; w < rowWords; w++) {
                  if (words[at + w] !== patternWord(l, want + w)) {
                    mismatches++;
                    firstMismatch ??= `layer ${l} kv ${kv} block ${target} token ${t} word ${w}`;
                  }
                }
              }
            }
          });
        });
        send({
          type: 'verified',
          mismatches,
          checkedBytes: request.mapping.length * 2 * blockBytes * layers.length,
          firstMismatch,
        });
        return;
      }
      if (request.type === 'driverTimings') {
        send({ type: 'driverTimings', us: driverTimings(request.reps) });
        return;
      }
      // Baseline: cuMemcpy of the same bytes between device memory and pinned host memory.
      const device = cuda.memAlloc(request.bytes);
      const pinned = new Uint8Array(new SharedArrayBuffer(request.bytes));
      cuda.memHostRegister(pinned, CU_MEMHOSTREGISTER_PORTABLE);
      const d2h: number[] = [];
      const h2d: number[] = [];
      for (let r = 0; r <= request.reps; r++) {
        let t0 = performance.now();
        cuda.memcpyDtoH(pinned, device);
        const a = performance.now() - t0;
        t0 = performance.now();
        cuda.memcpyHtoD(device, pinned);
        const b = performance.now() - t0;
        if (r === 0) continue; // warm-up
        d2h.push(request.bytes / (a * 1e6));
        h2d.push(request.bytes / (b * 1e6));
      }
      cuda.memHostUnregister(pinned);
      cuda.memFree(device);
      const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
      send({ type: 'baseline', d2hGbps: median(d2h), h2dGbps: median(h2d) });
    } catch (error) {
      send({ type: 'error', message: (error as Error).message });
    }
  });
} catch (error) {
  send({ type: 'error', message: (error as Error).message });
  process.exitCode = 1;
}
