import test from 'ava';
import { DemoEngine, demoPrompt } from '../src/client/demo-engine.js';
import { startWire } from './wire-harness.js';

test('engine-driven flow over the socket: miss, store, hit, bytes verified', async (t) => {
  const h = await startWire(t);
  const client = await h.client();
  t.is(client.server.protocolVersion, 1);
  t.is(client.server.chunkSize, 64);
  const engine = new DemoEngine(client);
  const info = await engine.register();
  t.true(info.chunkBytes > 0);
  const prompt = demoPrompt(1, 1, 64 * 5 + 7, 64 * 3);
  const first = await engine.runRequest('r1', prompt);
  t.is(first.hitTokens, 0);
  t.is(first.storedChunks, 5);
  const second = await engine.runRequest('r2', prompt);
  t.is(second.hitTokens, 64 * 5);
  t.is(second.corruptChunks, 0);
  const other = await engine.runRequest('r3', demoPrompt(1, 2, 64 * 5, 64 * 3));
  t.is(other.hitTokens, 64 * 3);
  t.is(other.corruptChunks, 0);
  t.is(other.storedChunks, 2);
});
