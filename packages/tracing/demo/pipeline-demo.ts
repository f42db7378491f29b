/**
 * Event pipeline demo: start the drain thread, publish a synthetic request workload from
 * several threads, print what was delivered. `npm start` runs it until the server exists.
 */
import { Worker } from 'node:worker_threads';
import { EventPipeline } from '../src/index.js';

const THREADS = 3;
const REQUESTS = 10_000;

const pipeline = new EventPipeline({
  subscribers: [{ module: new URL('./summary-subscriber.js', import.meta.url).href }],
});
await pipeline.start();
console.log(`kvmp event pipeline demo: ${THREADS} producer threads × ${REQUESTS} requests`);
const started = performance.now();
await Promise.all(
  Array.from({ length: THREADS }, (_, thread) => {
    const worker = new Worker(new URL('./workload-thread.js', import.meta.url), {
      workerData: { ring: pipeline.handle, thread, requests: REQUESTS },
    });
    return new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
  }),
);
const published = performance.now() - started;
const report = await pipeline.stop();
console.log(
  `published in ${published.toFixed(0)} ms; delivered ${report?.delivered ?? 0} events, dropped ${report?.dropped ?? 0}`,
);
