/** Demo producer thread: publishes a synthetic request lifecycle per session. */
import { parentPort, workerData } from 'node:worker_threads';
import { attachPublisher, type RingHandle } from '../src/index.js';

const { ring, thread, requests } = workerData as { ring: RingHandle; thread: number; requests: number };
const pub = attachPublisher(ring);
const model = 'meta-llama/Llama-3.1-8B';
const device = 'cpu';
for (let i = 0; i < requests; i++) {
  const sid = `req-${thread}-${i}`;
  const hit = i % 3 !== 0;
  const trace = {
    traceparent: `00-${'a'.repeat(24)}${thread.toString(16).padStart(8, '0')}-${(i + 1).toString(16).padStart(16, '0')}-01`,
  };
  pub.publish('MP_REQUEST_START', sid, { model_name: model }, { trace });
  const lookup = pub.nextOpId();
  pub.publish('MP_LOOKUP_PREFETCH_START', sid, { model_name: model }, { opId: lookup, trace });
  pub.publish(
    'MP_LOOKUP_PREFETCH_END',
    sid,
    {
      found_count: hit ? 6 : 0,
      requested_tokens: 2048,
      hit_tokens: hit ? 1536 : 0,
      l1_hit_tokens: hit ? 1536 : 0,
      l2_hit_tokens: 0,
      l1_hit_keys: hit ? 6 : 0,
      l2_hit_keys: 0,
      early_exit_reason: '',
    },
    { opId: lookup },
  );
  const copy = { device, engine_id: 'demo-engine', model_name: model };
  if (hit) {
    const op = pub.nextOpId();
    pub.publish('MP_RETRIEVE_SUBMITTED', sid, { device }, { opId: op, trace });
    pub.publish('MP_RETRIEVE_START', sid, copy, { opId: op, workerId: 0 });
    pub.publish(
      'MP_RETRIEVE_END',
      sid,
      { ...copy, retrieved_count: 6, total_bytes: 6 * 2 ** 25, num_tokens: 1536, success: true },
      { opId: op, workerId: 0 },
    );
  }
  const op = pub.nextOpId();
  pub.publish('MP_STORE_SUBMITTED', sid, { device }, { opId: op, trace });
  pub.publish('MP_STORE_START', sid, copy, { opId: op, workerId: 0 });
  pub.publish(
    'MP_STORE_END',
    sid,
    { ...copy, stored_count: hit ? 2 : 8, total_bytes: 2 ** 26, num_tokens: 512, success: true },
    { opId: op, workerId: 0 },
  );
  pub.publish('MP_REQUEST_END', sid, {});
}
parentPort?.postMessage('done');
