import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';

test('the npm start demo runs the cache server end to end', async (t) => {
  const main = new URL('../src/demo/main.js', import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, [main.pathname, '--requests', '8'], {
    timeout: 60_000,
  });
  t.regex(stdout, /8 requests: .*% of prompt tokens served from cache/);
  t.regex(stdout, /every retrieved token byte-exact/);
  t.regex(stdout, /request req-7 .*hit_tokens=/);
  t.regex(stdout, /mp\.lookup_prefetch/);
});
