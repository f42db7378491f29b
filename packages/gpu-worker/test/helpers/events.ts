import { BroadcastChannel } from 'node:worker_threads';
import { EventPipeline, type KvmpEvent } from '@kvmp/tracing';

let channels = 0;

/** A running event pipeline whose store/retrieve events `stop()` returns in ring order. */
export async function collectingPipeline(): Promise<{ pipeline: EventPipeline; stop: () => Promise<KvmpEvent[]> }> {
  const channel = `gpu-worker-events-${process.pid}-${++channels}`;
  const bc = new BroadcastChannel(channel);
  const events = new Promise<KvmpEvent[]>((resolve) => {
    bc.onmessage = (message) => {
      resolve((message as unknown as { data: KvmpEvent[] }).data);
      bc.close();
    };
  });
  const pipeline = new EventPipeline({
    subscribers: [{ module: new URL('../fixtures/collect-subscriber.js', import.meta.url).href, options: { channel } }],
  });
  await pipeline.start();
  return {
    pipeline,
    stop: async () => {
      await pipeline.stop();
      return events;
    },
  };
}
