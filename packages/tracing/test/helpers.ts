import { BroadcastChannel, Worker } from 'node:worker_threads';
import type { RingHandle, SubscriberSpec } from '../src/index.js';
import type { CollectOptions, CollectReport } from './fixtures/collect-subscriber.js';

let channels = 0;

/** A collect subscriber spec plus a promise of its report (sent at the subscriber's shutdown). */
export function collector(options: Omit<CollectOptions, 'channel'> = {}): {
  spec: SubscriberSpec;
  report: Promise<CollectReport>;
} {
  const channel = `collect-${process.pid}-${++channels}`;
  const bc = new BroadcastChannel(channel);
  const report = new Promise<CollectReport>((resolve) => {
    bc.onmessage = (message) => {
      resolve((message as unknown as { data: CollectReport }).data);
      bc.close();
    };
  });
  return {
    spec: {
      module: new URL('./fixtures/collect-subscriber.js', import.meta.url).href,
      options: { ...options, channel },
    },
    report,
  };
}

/** Runs the producer fixture on a new thread and resolves with its first message. */
export function runProducer<T>(data: Record<string, unknown> & { ring: RingHandle }): Promise<T> {
  const worker = new Worker(new URL('./fixtures/producer-thread.js', import.meta.url), { workerData: data });
  return new Promise<T>((resolve, reject) => {
    worker.once('message', (m: T) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Deterministic PRNG (mulberry32) so randomized tests are reproducible from their seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Stops the pipeline when the test ends, so a failed assertion cannot leave a drain thread running. */
export function track<P extends { stop(): Promise<unknown> }>(
  t: { teardown(fn: () => unknown): void },
  pipeline: P,
): P {
  t.teardown(() => pipeline.stop());
  return pipeline;
}
