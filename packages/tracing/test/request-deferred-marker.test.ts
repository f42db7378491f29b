/**
 * The root says whether its close waited for in-flight copies (`kvmp.deferred_close`) and by
 * how much (`kvmp.close_delay_ms`), so trace UIs can find deferred requests (see the TraceQL
 * recipes in examples/observability).
 */
import test from 'ava';
import { ev, harness } from './fixtures/request-harness.js';

test('a deferred close is marked on the root with the delay after REQUEST_END', (t) => {
  const h = harness();
  h.feed(
    ev('MP_REQUEST_START', 's', 0),
    ev('MP_STORE_SUBMITTED', 's', 10),
    ev('MP_STORE_START', 's', 15, { opId: 1 }),
    ev('MP_REQUEST_END', 's', 20),
    ev('MP_STORE_END', 's', 2_520, { opId: 1 }),
  );
  const root = h.one('request');
  t.is(root.attributes['kvmp.deferred_close'], true);
  t.is(root.attributes['kvmp.close_delay_ms'], 2.5);
});

test('an immediate close is marked as not deferred', (t) => {
  const h = harness();
  h.feed(ev('MP_REQUEST_START', 's', 0), ev('MP_REQUEST_END', 's', 20));
  t.is(h.one('request').attributes['kvmp.deferred_close'], false);
  t.is(h.one('request').attributes['kvmp.close_delay_ms'], undefined);
});
