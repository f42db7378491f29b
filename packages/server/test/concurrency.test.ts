import test from 'ava';
import { fakePrompt } from '../src/index.js';
import { CHUNK, startHarness } from './helpers.js';

test('1000 concurrent sessions leave no open span, no lock and no session behind', async (t) => {
  const h = await startHarness(t, { engine: { numBlocks: 9600 } });
  const { server, engine } = h;
  const prompts = Array.from({ length: 50 }, (_, i) => fakePrompt(2 * CHUNK + 10, 1000 + i));
  // Half the prompts are cached before the burst, so it mixes hits and misses.
  for (let i = 0; i < 25; i++) await engine.runRequest(server, { requestId: `warm${i}`, tokens: prompts[i] });
  const reports = await Promise.all(
    Array.from({ length: 1000 }, (_, i) =>
      engine.runRequest(server, { requestId: `c${i}`, tokens: prompts[i % prompts.length] }),
    ),
  );
  t.is(
    reports.reduce((n, r) => n + r.corruptTokens, 0),
    0,
    'every request’s KV is byte-exact',
  );
  t.true(
    reports.some((r) => r.hitTokens > 0),
    'some requests hit',
  );
  const st = server.status();
  t.like(st, { activeSessions: 0, sessionsWithLocks: 0, inflightCopies: 0 });
  t.like(st.l1, { readLocked: 0, writeLocked: 0, pinned: 0, objects: 100 });
  const spans = await h.finish();
  const roots = spans.filter((s) => s.name === 'request');
  t.is(roots.length, 1025);
  const rootIds = new Map(roots.map((r) => [r.spanId, r.attributes.session_id]));
  for (const s of spans) {
    if (s.name === 'request') continue;
    t.is(rootIds.get(s.parentSpanId ?? ''), s.attributes.session_id);
  }
  const stats = h.tracingStats();
  t.truthy(stats, 'the subscriber reported at shutdown');
  t.like(stats, { openSpans: 0, openSessions: 0, leakedSpans: 0, unmatchedEnds: 0 });
  t.is(stats?.rootsStarted, 1025);
});
