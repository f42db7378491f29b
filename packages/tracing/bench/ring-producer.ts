/** Benchmark producer thread: waits on a start barrier, then publishes `count` events losslessly. */
import { parentPort, workerData } from 'node:worker_threads';
import { attachPublisher, type RingHandle } from '../src/index.js';
import { SESSION_ID, typicalMeta } from './bench-workload.js';

const { ring, count, go } = workerData as { ring: RingHandle; count: number; go: SharedArrayBuffer };
const publisher = attachPublisher(ring);
const gate = new Int32Array(go);
parentPort?.postMessage('ready');
Atomics.wait(gate, 0, 0);
let retries = 0;
for (let i = 1; i <= count; i++) {
  // Lossless for throughput: when the ring is full, yield the core to the drain and retry.
  while (!publisher.publish('L1_WRITE_RESERVED', SESSION_ID, typicalMeta(i), { opId: i })) {
    retries++;
    Atomics.wait(gate, 1, 0, 0.02);
  }
}
parentPort?.postMessage({ retries });
