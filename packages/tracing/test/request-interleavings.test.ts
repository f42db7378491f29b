/**
 * Randomized interleavings of CPU sentinels and GPU-ordered events, across sessions,
 * operations and tensor-parallel workers, under the publishing protocol (SUBMITTED is
 * published before the GPU work is enqueued, so it precedes that work's START/END and the
 * session's REQUEST_END). Whatever the order: exactly one closed root per request, stamped
 * with its REQUEST_END time, every child under it, nothing leaked, nothing left open.
 */
import test from 'ava';
import type { KvmpEvent } from '../src/index.js';
import { at, ev, harness, ns, parentId, spanId } from './fixtures/request-harness.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Make = (us: number) => KvmpEvent;

/** A sequence of events that must be published in order; `gate` names the step it waits for. */
interface Lane {
  readonly steps: { readonly make: Make; readonly id: string; readonly gate?: string }[];
  next: number;
}

interface Plan {
  readonly sessionId: string;
  readonly hasRequestStart: boolean;
  readonly children: number;
}

function planSession(rand: () => number, sessionId: string, useOpIds: boolean, nextOp: () => number) {
  const lanes: Lane[] = [];
  const cpu: Lane['steps'] = [];
  const storeOnly = rand() < 0.2;
  const workers = rand() < 0.5 ? [undefined] : [0, 1];
  let children = 0;
  if (!storeOnly) {
    cpu.push({ id: `${sessionId}:rs`, make: (us) => ev('MP_REQUEST_START', sessionId, us) });
    if (rand() < 0.8) {
      const op = useOpIds ? nextOp() : 0;
      cpu.push({ id: `${sessionId}:lps`, make: (us) => ev('MP_LOOKUP_PREFETCH_START', sessionId, us, { opId: op }) });
      cpu.push({
        id: `${sessionId}:lpe`,
        make: (us) =>
          ev('MP_LOOKUP_PREFETCH_END', sessionId, us, { opId: op, meta: { hit_tokens: 16, requested_tokens: 32 } }),
      });
      children++;
    }
  }
  const ops: ('store' | 'retrieve')[] = [];
  const retrieves = storeOnly ? 0 : Math.floor(rand() * 3);
  const stores = (storeOnly ? 1 : 0) + Math.floor(rand() * 3);
  for (let i = 0; i < retrieves; i++) ops.push('retrieve');
  for (let i = 0; i < stores; i++) ops.push('store');
  for (const kind of ops) {
    const op = useOpIds ? nextOp() : 0;
    const K = kind === 'store' ? 'STORE' : 'RETRIEVE';
    for (const w of workers) {
      const sub = `${sessionId}:${kind}:${op}:${w}:${cpu.length}`;
      cpu.push({ id: sub, make: (us) => ev(`MP_${K}_SUBMITTED`, sessionId, us, { opId: op, workerId: w }) });
      lanes.push({
        next: 0,
        steps: [
          { id: `${sub}:s`, gate: sub, make: (us) => ev(`MP_${K}_START`, sessionId, us, { opId: op, workerId: w }) },
          {
            id: `${sub}:e`,
            make: (us) => ev(`MP_${K}_END`, sessionId, us, { opId: op, workerId: w, meta: { success: rand() < 0.9 } }),
          },
        ],
      });
      children++;
    }
  }
  cpu.push({ id: `${sessionId}:re`, make: (us) => ev('MP_REQUEST_END', sessionId, us) });
  lanes.unshift({ steps: cpu, next: 0 });
  return { lanes, plan: { sessionId, hasRequestStart: !storeOnly, children } satisfies Plan };
}

/** A random interleaving that keeps each lane in order and respects the gates. */
function interleave(rand: () => number, lanes: Lane[]): KvmpEvent[] {
  const done = new Set<string>();
  const out: KvmpEvent[] = [];
  let us = 0;
  for (;;) {
    const ready = lanes.filter((l) => {
      const step = l.steps[l.next];
      return step !== undefined && (step.gate === undefined || done.has(step.gate));
    });
    if (ready.length === 0) break;
    const lane = ready[Math.floor(rand() * ready.length)];
    const step = lane.steps[lane.next++];
    done.add(step.id);
    us += 1 + Math.floor(rand() * 5);
    out.push(step.make(us));
  }
  return out;
}

test('thousands of random interleavings: one closed root per request, every child under it, nothing leaked', (t) => {
  const SEEDS = 3000;
  let checkedChildren = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rand = mulberry32(seed);
    const useOpIds = rand() < 0.85;
    let op = 0;
    const nextOp = () => ++op;
    const sessions = 1 + Math.floor(rand() * 4);
    const lanes: Lane[] = [];
    const plans: Plan[] = [];
    for (let i = 0; i < sessions; i++) {
      const p = planSession(rand, `seed${seed}-s${i}`, useOpIds, nextOp);
      lanes.push(...p.lanes);
      plans.push(p.plan);
    }
    const events = interleave(rand, lanes);
    const h = harness();
    h.feed(...events);

    const fail = (msg: string) => t.fail(`seed ${seed}: ${msg}`);
    const roots = h.byName('request');
    if (roots.length !== plans.length) {
      fail(`${roots.length} roots for ${plans.length} requests`);
      return;
    }
    for (const plan of plans) {
      const mine = roots.filter((r) => r.attributes.session_id === plan.sessionId);
      if (mine.length !== 1) return fail(`${mine.length} roots for ${plan.sessionId}`);
      const root = mine[0];
      const end = events.find((e) => e.type === 'MP_REQUEST_END' && e.sessionId === plan.sessionId);
      const firstTouch = events.find(
        (e) =>
          e.sessionId === plan.sessionId &&
          (plan.hasRequestStart ? e.type === 'MP_REQUEST_START' : e.type.endsWith('_START')),
      );
      if (end === undefined || firstTouch === undefined) return fail('generator bug');
      if (ns(root.startTime) !== ns(firstTouch.time)) return fail(`${plan.sessionId}: root start`);
      // biome-ignore lint/complexity/useMathMinMax: bigints (Math.max takes numbers only)
      const expectedEnd = ns(end.time) < ns(root.startTime) ? ns(root.startTime) : ns(end.time);
      if (ns(root.endTime) !== expectedEnd) return fail(`${plan.sessionId}: root end is not the REQUEST_END time`);
      if (root.attributes['kvmp.leaked'] !== undefined) return fail(`${plan.sessionId}: root leaked`);
      const children = h.spans().filter((s) => s.name !== 'request' && s.attributes.session_id === plan.sessionId);
      if (children.length !== plan.children)
        return fail(`${plan.sessionId}: ${children.length}/${plan.children} children`);
      for (const c of children) {
        if (parentId(c) !== spanId(root)) return fail(`${plan.sessionId}: orphan ${c.name}`);
        if (c.spanContext().traceId !== root.spanContext().traceId) return fail('child in another trace');
        if (c.attributes['kvmp.leaked'] !== undefined) return fail(`${plan.sessionId}: leaked ${c.name}`);
        if (ns(c.endTime) < ns(c.startTime)) return fail('child ends before it starts');
        checkedChildren++;
      }
    }
    const stats = h.tracker.stats();
    if (stats.openSessions !== 0 || stats.openSpans !== 0 || stats.leakedSpans !== 0 || stats.unmatchedEnds !== 0) {
      return fail(`left open: ${JSON.stringify(stats)}`);
    }
    if (h.registry.size !== 0) return fail('registry not empty');
    if (ns(events[0].time) < ns(at(0))) return fail('clock');
  }
  t.true(checkedChildren > SEEDS, `checked ${checkedChildren} children over ${SEEDS} seeds`);
});

test('the same interleavings with one END dropped: exactly the open spans are swept as leaked, no orphan', (t) => {
  let tested = 0;
  for (let seed = 1; seed <= 500; seed++) {
    const rand = mulberry32(seed * 7919);
    let op = 0;
    const { lanes } = planSession(rand, `s${seed}`, true, () => ++op);
    const events = interleave(rand, lanes);
    const ends = events.filter((e) => e.type === 'MP_STORE_END' || e.type === 'MP_RETRIEVE_END');
    if (ends.length === 0) continue;
    const dropped = ends[Math.floor(rand() * ends.length)];
    tested++;
    const h = harness({ ttlMs: 1000 });
    h.feed(...events.filter((e) => e !== dropped));
    h.clockNs += 2e9;
    h.tracker.sweep(h.clockNs);
    const roots = h.byName('request');
    const leaked = h.spans().filter((s) => s.attributes['kvmp.leaked'] === true);
    if (roots.length !== 1) return t.fail(`seed ${seed}: ${roots.length} roots`);
    if (leaked.length !== 2) return t.fail(`seed ${seed}: ${leaked.length} leaked spans, expected root + child`);
    if (roots[0].attributes['kvmp.leak_reason'] !== 'in_flight_end_missing') return t.fail(`seed ${seed}: reason`);
    for (const s of h.spans()) if (s !== roots[0] && parentId(s) !== spanId(roots[0])) return t.fail('orphan');
    if (h.tracker.stats().openSpans !== 0 || h.registry.size !== 0) return t.fail(`seed ${seed}: left open`);
  }
  t.true(tested > 300, `${tested} seeds had an END to drop`);
});
