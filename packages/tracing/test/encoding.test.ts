import test from 'ava';
import { RingConsumer } from '../src/drain/ring-consumer.js';
import { attachPublisher, EventEncodingError, EventPipeline, Limits } from '../src/index.js';
import { createRing } from '../src/ring/ring-layout.js';

/** A ring with a publisher and a consumer on this thread (no drain thread): encode, then decode. */
function inProcessRing(slots: number) {
  const handle = createRing(slots);
  return { publisher: attachPublisher(handle), consumer: new RingConsumer(handle) };
}

test('oversize fields are rejected with a clear error, and nothing is written', (t) => {
  const pipeline = new EventPipeline();
  const pub = pipeline.publisher;
  const longId = 's'.repeat(Limits.SESSION_ID_BYTES + 1);
  const e1 = t.throws(() => pub.publish('MP_REQUEST_END', longId, {}), { instanceOf: EventEncodingError });
  t.regex(e1.message, /MP_REQUEST_END: field 'sessionId' is 257 bytes long \(limit 256\)/);

  const e2 = t.throws(
    () => pub.publish('L1_READ_FAILED', 's', { during: 'x', reason: 'é'.repeat(Limits.STRING_BYTES), key_count: 1 }),
    { instanceOf: EventEncodingError },
  );
  t.regex(e2.message, /field 'reason' is 2048 bytes long \(limit 1024\)/, 'limits count UTF-8 bytes');

  t.throws(() => pub.publish('MP_REQUEST_START', 's', { model_name: 42 as unknown as string }), {
    message: /field 'model_name' must be a string/,
  });
  t.throws(() => pub.publish('MP_RETRIEVE_SUBMITTED', 's', {} as never), {
    message: /field 'device' is required/,
  });
  t.is(pipeline.stats().queueDepth, 0);
  t.true(pub.publish('MP_REQUEST_END', 's'.repeat(Limits.SESSION_ID_BYTES), {}), 'exactly at the limit is fine');
});

test('decoded strings are exact even when remembered strings collide (same length and sampled bytes)', async (t) => {
  const { publisher, consumer } = inProcessRing(1024);
  // Same length, first, middle and last byte: one intern slot. They differ in a 4-byte word
  // (index 1), in the odd tail (index 9 of 11) or only in multi-byte UTF-8.
  const ids = ['aXbcdefghiz', 'aYbcdefghiz', 'aXbcdefghQz', 'a-éé-f-ghz', 'a-èé-f-ghz', ''];
  const seen: string[] = [];
  for (let round = 0; round < 3; round++) {
    for (const id of ids) publisher.publish('MP_REQUEST_END', id, {});
    consumer.poll(1_000, (event) => seen.push(event.sessionId));
  }
  t.deepEqual(seen, [...ids, ...ids, ...ids]);
});

test('the producer’s cache of encoded strings stays exact while it evicts (more distinct strings than entries)', async (t) => {
  const { publisher, consumer } = inProcessRing(4096);
  const ids = Array.from({ length: 700 }, (_, i) => `session-${i}-${'é'.repeat(i % 3)}`);
  const sent: string[] = [];
  const seen: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < ids.length; i++) {
      // Every id once per round (3 is coprime to 700), in a different order each round.
      const id = ids[(i * 3 + round * 11) % ids.length];
      publisher.publish('MP_REQUEST_START', id, { model_name: i % 2 ? 'm-a' : 'model-b' });
      sent.push(id);
      if (sent.length % 500 === 0) consumer.poll(10_000, (e) => seen.push(e.sessionId));
    }
  }
  consumer.poll(10_000, (e) => seen.push(e.sessionId));
  t.is(seen.length, sent.length);
  t.deepEqual(seen, sent);
});
