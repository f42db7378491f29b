import test from 'ava';
import { EventPipeline, epochTimeToMs } from '../src/index.js';
import { collector, sleep, track } from './helpers.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test('delivers type, session, op id, worker id, typed metadata and trace carrier', async (t) => {
  const c = collector({ keepEvents: true });
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  const pub = pipeline.publisher;
  const opId = pub.nextOpId();
  pub.publish(
    'MP_REQUEST_START',
    'req-1',
    { model_name: 'llama' },
    { trace: { traceparent: TRACEPARENT, tracestate: 'k=v' } },
  );
  pub.publish(
    'MP_STORE_END',
    'req-1',
    {
      device: 'cuda:0',
      engine_id: 'e0',
      model_name: 'llama',
      stored_count: 3,
      total_bytes: 3 * 2 ** 25,
      num_tokens: 768,
      success: false,
      error: 'copy failed',
    },
    { opId, workerId: 1 },
  );
  pub.publish('L1_READ_FAILED', 'sëssion-ü', { during: 'l1_retrieve', reason: 'not_found', key_count: 2 });
  await pipeline.stop();
  const { events } = await c.report;
  t.is(events.length, 3);
  const [start, end, failed] = events;
  t.is(start.type, 'MP_REQUEST_START');
  t.deepEqual(start.meta, { model_name: 'llama' });
  t.deepEqual(start.trace, { traceparent: TRACEPARENT, tracestate: 'k=v' });
  t.is(start.workerId, undefined);
  t.is(end.type, 'MP_STORE_END');
  t.is(end.opId, opId);
  t.is(end.workerId, 1);
  t.deepEqual(end.meta, {
    device: 'cuda:0',
    engine_id: 'e0',
    model_name: 'llama',
    stored_count: 3,
    total_bytes: 3 * 2 ** 25,
    num_tokens: 768,
    success: false,
    error: 'copy failed',
  });
  t.is(end.trace, undefined);
  t.is(failed.sessionId, 'sëssion-ü', 'non-ASCII session ids round-trip');
  t.true(start.seq < end.seq && end.seq < failed.seq);
});

test('timestamps are taken at publish time, not at drain time', async (t) => {
  const c = collector({ keepEvents: true });
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  const before = Date.now();
  pipeline.publisher.publish('MP_REQUEST_END', 'early', {});
  const after = Date.now();
  await sleep(60);
  await pipeline.start();
  await pipeline.stop();
  const [event] = (await c.report).events;
  const ms = epochTimeToMs(event.time);
  t.true(ms >= before - 1 && ms <= after + 1, `stamp ${ms} within [${before}, ${after}]`);
  t.true(event.time[1] >= 0 && event.time[1] < 1e9);
});

test('an explicit time (GPU-ordered events) is kept as given', async (t) => {
  const c = collector({ keepEvents: true });
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  pipeline.publisher.publish(
    'MP_RETRIEVE_START',
    's',
    { device: 'cuda:0', engine_id: 'e', model_name: 'm' },
    { time: [1_800_000_000, 123_456_789] },
  );
  await pipeline.stop();
  t.deepEqual((await c.report).events[0].time, [1_800_000_000, 123_456_789]);
});

test('an invalid trace carrier is dropped, never fatal', async (t) => {
  const c = collector({ keepEvents: true });
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  const pub = pipeline.publisher;
  pub.publish('MP_REQUEST_END', 'a', {}, { trace: { traceparent: 'bad' } });
  pub.publish('MP_REQUEST_END', 'b', {}, { trace: { traceparent: `${TRACEPARENT}x` } });
  pub.publish('MP_REQUEST_END', 'c', {}, { trace: { traceparent: TRACEPARENT, tracestate: 'x'.repeat(513) } });
  pub.publish(
    'MP_REQUEST_END',
    'd',
    {},
    { trace: { traceparent: '00-00000000000000000000000000000000-b7ad6b7169203331-01' } },
  );
  await pipeline.stop();
  const events = (await c.report).events;
  t.deepEqual(
    events.map((e) => e.trace),
    [undefined, undefined, { traceparent: TRACEPARENT }, undefined],
  );
});

test('subscribers receive only the types they declare; producers can ask cheaply', async (t) => {
  const stores = collector({ keepEvents: true, types: ['MP_STORE_SUBMITTED'], name: 'stores' });
  const pipeline = track(t, new EventPipeline({ subscribers: [stores.spec] }));
  const pub = pipeline.publisher;
  t.false(pub.isSubscribed('MP_STORE_SUBMITTED'), 'nothing subscribed before start');
  await pipeline.start();
  t.true(pub.isSubscribed('MP_STORE_SUBMITTED'));
  t.false(pub.isSubscribed('MP_REQUEST_END'));
  pub.publish('MP_REQUEST_END', 's', {});
  pub.publish('MP_STORE_SUBMITTED', 's', { device: 'cpu' });
  await pipeline.stop();
  t.false(pub.isSubscribed('MP_STORE_SUBMITTED'), 'cleared at stop');
  t.deepEqual(
    (await stores.report).events.map((e) => e.type),
    ['MP_STORE_SUBMITTED'],
  );
});

test('op ids are unique across threads', (t) => {
  const pipeline = track(t, new EventPipeline());
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) seen.add(pipeline.publisher.nextOpId());
  t.is(seen.size, 1000);
  t.false(seen.has(0), '0 means "not an operation"');
});

test('the anchor name MP_SESSION_END is an alias of MP_REQUEST_END', async (t) => {
  const c = collector({ keepEvents: true, types: ['MP_SESSION_END'] });
  const pipeline = track(t, new EventPipeline({ subscribers: [c.spec] }));
  await pipeline.start();
  t.true(pipeline.publisher.isSubscribed('MP_REQUEST_END'));
  pipeline.publisher.publish('MP_SESSION_END', 'a', {});
  pipeline.publisher.publish('MP_REQUEST_END', 'b', {});
  await pipeline.stop();
  t.deepEqual(
    (await c.report).events.map((e) => [e.type, e.sessionId]),
    [
      ['MP_REQUEST_END', 'a'],
      ['MP_REQUEST_END', 'b'],
    ],
  );
});
