/**
 * Baseline (a) of the events benchmark: one postMessage per event from each producer thread to
 * a drain thread that dispatches to a subscriber callback. Both roles live in this file.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { SESSION_ID, typicalMeta } from './bench-workload.js';

interface PostedEvent {
  type: string;
  sessionId: string;
  opId: number;
  ts: number;
  meta: ReturnType<typeof typicalMeta>;
}

const data = workerData as
  | { role: 'drain'; ports: MessagePort[]; total: number }
  | { role: 'producer'; port: MessagePort; count: number; go: SharedArrayBuffer };

if (data.role === 'drain') {
  let delivered = 0;
  let checksum = 0;
  const subscriber = (e: PostedEvent): void => {
    checksum += e.opId + e.sessionId.length + e.meta.key_count;
  };
  for (const port of data.ports) {
    port.on('message', (e: PostedEvent) => {
      subscriber(e);
      if (++delivered === data.total) parentPort?.postMessage({ delivered, checksum });
    });
  }
  parentPort?.postMessage('ready');
} else {
  const gate = new Int32Array(data.go);
  parentPort?.postMessage('ready');
  Atomics.wait(gate, 0, 0);
  for (let i = 1; i <= data.count; i++) {
    data.port.postMessage({
      type: 'l1.write.reserved',
      sessionId: SESSION_ID,
      opId: i,
      ts: performance.timeOrigin + performance.now(),
      meta: typicalMeta(i),
    } satisfies PostedEvent);
  }
  parentPort?.postMessage('sent');
}
