import test from 'ava';
import { fakePrompt } from '../src/index.js';
import { byName, CHUNK, sessionSpans, startHarness } from './helpers.js';

test('miss then hit: bytes come back and spans nest', async (t) => {
  const h = await startHarness(t);
  const tokens = fakePrompt(CHUNK * 4 + 10, 1);
  const first = await h.engine.runRequest(h.server, { requestId: 'r1', tokens });
  t.is(first.hitTokens, 0);
  t.is(first.storedChunks, 4);
  t.is(first.corruptTokens, 0);
  const second = await h.engine.runRequest(h.server, { requestId: 'r2', tokens });
  t.is(second.hitTokens, CHUNK * 4);
  t.is(second.corruptTokens, 0);
  const spans = await h.finish();
  const r2 = sessionSpans(spans, 'r2');
  const root = byName(r2, 'request')[0];
  t.truthy(root);
  t.true(byName(r2, 'mp.retrieve').every((s) => s.parentSpanId === root.spanId));
});
