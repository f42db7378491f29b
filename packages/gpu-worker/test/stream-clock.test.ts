import test from 'ava';
import type { CudaDriver, CuHandle } from '../src/cuda/driver.js';
import { StreamClock } from '../src/worker-thread/cuda/stream-clock.js';

/** Just the driver calls the clock makes; the "GPU" records an event at the current host time + a fixed offset. */
function fakeDriver(host: { ns: number }) {
  const recordedAt = new Map<CuHandle, number>();
  const destroyed = new Set<CuHandle>();
  let next = 0;
  const driver = {
    streamCreate: () => ({ stream: true }),
    streamDestroy: () => {},
    eventCreate: () => ({ id: ++next }),
    eventDestroy: (e: CuHandle) => destroyed.add(e),
    eventRecord: (e: CuHandle) => recordedAt.set(e, host.ns + 123_456), // GPU clock offset must cancel out
    eventSynchronize: () => {
      host.ns += 2_000; // the sync takes 2 µs of host time
    },
    eventElapsedMs: (a: CuHandle, b: CuHandle) =>
      ((recordedAt.get(b) ?? Number.NaN) - (recordedAt.get(a) ?? Number.NaN)) / 1e6,
  };
  return { driver: driver as unknown as CudaDriver, record: (e: CuHandle) => driver.eventRecord(e), destroyed };
}

test('places events at reference + elapsed, midpoint of the sync bracket', (t) => {
  const host = { ns: 1_700_000_000e9 };
  const { driver, record } = fakeDriver(host);
  const clock = new StreamClock(driver, () => host.ns);
  const anchor = clock.acquire();
  host.ns += 5_000_000; // 5 ms later the op's event is recorded
  const ev = { op: 1 };
  record(ev);
  // Anchor taken at [t0, t0 + 2 µs] → midpoint t0 + 1 µs; the GPU recorded it at t0 (+offset).
  t.is(clock.epochNs(anchor, ev) - (1_700_000_000e9 + 1_000 + 5_000_000 + 2_000), 0);
});

test('re-anchors after 5 s; old anchors live while an operation holds them', (t) => {
  const host = { ns: 1e18 };
  const { driver, destroyed } = fakeDriver(host);
  const clock = new StreamClock(driver, () => host.ns);
  const a = clock.acquire();
  t.is(clock.acquire(), a, 'same anchor within 5 s');
  clock.release(a);
  host.ns += 6e9;
  const b = clock.acquire();
  t.not(b, a);
  t.false(destroyed.has(a.event), 'still held by an operation');
  clock.release(a);
  t.true(destroyed.has(a.event), 'destroyed once released');
  clock.release(b);
  t.false(destroyed.has(b.event), 'the current anchor is kept');
  host.ns += 6e9;
  clock.acquire();
  t.true(destroyed.has(b.event), 'an unheld anchor is destroyed when replaced');
});
