import test from 'ava';
import { ActorRegistry, Mailbox } from '../src/index.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

test('a mailbox runs messages one at a time in arrival order', async (t) => {
  const m = new Mailbox();
  const log: string[] = [];
  let running = 0;
  const job = (name: string, async: boolean) => async () => {
    running++;
    t.is(running, 1, 'never two at once');
    log.push(`${name}>`);
    if (async) await tick();
    log.push(`<${name}`);
    running--;
    return name;
  };
  const results = await Promise.all([m.post(job('a', true)), m.post(job('b', false)), m.post(job('c', true))]);
  t.deepEqual(results, ['a', 'b', 'c']);
  t.deepEqual(log, ['a>', '<a', 'b>', '<b', 'c>', '<c']);
});

test('a failing message rejects alone', async (t) => {
  const m = new Mailbox();
  const a = m.post(() => {
    throw new Error('boom');
  });
  const b = m.post(() => 2);
  await t.throwsAsync(a, { message: 'boom' });
  t.is(await b, 2);
});

test('different actors interleave; one actor never overlaps', async (t) => {
  const reg = new ActorRegistry<{ n: number }>(() => ({ n: 0 }));
  const log: string[] = [];
  const p1 = reg.send('x', async (s) => {
    log.push('x1>');
    await tick();
    s.n++;
    log.push('<x1');
  });
  const p2 = reg.send('y', () => {
    log.push('y1');
  });
  const p3 = reg.send('x', (s) => {
    log.push(`x2 n=${s.n}`);
  });
  await Promise.all([p1, p2, p3]);
  t.deepEqual(log, ['x1>', 'y1', '<x1', 'x2 n=1']);
});

test('retire: messages queued behind the retiring one run, in order, on a fresh actor', async (t) => {
  const reg = new ActorRegistry<{ gen: number }>(() => ({ gen: Math.random() }));
  const first = reg.get('a') ?? (await reg.send('a', (s) => s.gen));
  const seen: number[] = [];
  const p1 = reg.send('a', async (_s, actor) => {
    await tick();
    reg.retire(actor);
  });
  const p2 = reg.send('a', (s) => seen.push(s.gen));
  const p3 = reg.send('a', (s) => seen.push(s.gen));
  await Promise.all([p1, p2, p3]);
  t.is(seen.length, 2);
  t.is(seen[0], seen[1], 'both ran on the same successor');
  t.not(seen[0], first);
  t.is(reg.size, 1);
});
