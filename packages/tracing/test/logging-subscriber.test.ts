import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { EventPipeline, type LogLevel, loggingSubscriber } from '../src/index.js';

async function logLines(t: ExecutionContext, level: LogLevel): Promise<Record<string, unknown>[]> {
  const file = join(mkdtempSync(join(tmpdir(), 'kvmp-log-')), 'log.jsonl');
  const fd = openSync(file, 'w');
  const pipeline = new EventPipeline({ subscribers: [loggingSubscriber({ level, fd })] });
  t.teardown(() => pipeline.stop());
  await pipeline.start();
  const pub = pipeline.publisher;
  const copy = { device: 'cpu', engine_id: 'e', model_name: 'm' };
  pub.publish('MP_REQUEST_START', 'req-9', { model_name: 'm' });
  pub.publish('MP_STORE_SUBMITTED', 'req-9', { device: 'cpu' }, { opId: 4 });
  pub.publish('MP_STORE_START', 'req-9', copy, { opId: 4, workerId: 1 });
  pub.publish(
    'MP_STORE_END',
    'req-9',
    { ...copy, stored_count: 0, total_bytes: 0, num_tokens: 0, success: false, error: 'engine event wait failed' },
    { opId: 4, workerId: 1 },
  );
  pub.publish('L1_ALLOCATION_FAILED', 'req-9', { during: 'l1_store', key_count: 2, requested_bytes: 64 });
  pub.publish('MP_REQUEST_END', 'req-9', {});
  await pipeline.stop();
  closeSync(fd);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('debug logs the lifecycle; failures are warnings', async (t) => {
  const lines = await logLines(t, 'debug');
  t.deepEqual(
    lines.map((l) => [l.level, l.msg]),
    [
      [20, 'request start'],
      [20, 'store submitted'],
      [20, 'store start'],
      [40, 'store failed'],
      [40, 'L1 allocation failed: chunks not stored'],
      [20, 'request end'],
    ],
  );
  t.is(lines[3].error, 'engine event wait failed');
  t.is(lines[3].session, 'req-9');
});

test('at info only failures are logged', async (t) => {
  const lines = await logLines(t, 'info');
  t.deepEqual(
    lines.map((l) => l.msg),
    ['store failed', 'L1 allocation failed: chunks not stored'],
  );
});
