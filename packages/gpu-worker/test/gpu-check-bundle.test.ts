/**
 * scripts/gpu-check cannot run here (no GPU), so this checks what can be: the bundle builds (without
 * the node binary, to stay fast), starts with a given node, fails cleanly with "no CUDA driver
 * found", and passes end to end against the stand-in driver (engine process, CUDA IPC, kernels).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { buildFakeCuda, hasCompiler } from './helpers/fake-cuda.js';

const script = fileURLToPath(new URL('../../../../scripts/gpu-check', import.meta.url));
const bundle = join(mkdtempSync(join(tmpdir(), 'kvmp-gpu-check-')), 'bundle');

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(script, args, {
    encoding: 'utf8',
    env: { ...process.env, KVMP_NODE: process.execPath, KVMP_GPU_CHECK_BUNDLE: bundle, ...env },
    timeout: 60_000,
  });

test.serial('the bundle builds', (t) => {
  const built = run(['--build', '--out', bundle, '--no-node']);
  t.is(built.status, 0, built.stderr);
  t.regex(built.stdout, /bundle at .*: [\d.]+ MiB \(without node\)/);
});

test.serial('without a driver it fails cleanly with "no CUDA driver found"', (t) => {
  const r = run([], { KVMP_LIBCUDA: '/nonexistent/libcuda.so.1' });
  t.is(r.status, 1);
  t.regex(r.stdout, /FAIL at start the GPU worker \(cuda backend\): no CUDA driver found: cannot load/);
  t.regex(r.stdout, /GPU CHECK FAILED/);
});

(hasCompiler() ? test.serial : test.skip)(
  'with the stand-in driver the whole check passes, every byte verified',
  (t) => {
    const fake = buildFakeCuda();
    const r = run(['--small'], { KVMP_LIBCUDA: fake.path });
    t.is(r.status, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /store verified: all \d+ bytes match/);
    t.regex(r.stdout, /retrieve verified: \d+ bytes in 16 blocks, first 21 tokens left untouched/);
    t.regex(r.stdout, /one-chunk retrieve: wall p50 [\d.]+ µs, above GPU time p50 -?[\d.]+/);
    t.regex(r.stdout, /driver calls, median µs: event_create_timing [\d.]+, event_create_ipc [\d.]+/);
    t.regex(r.stdout, /GPU CHECK PASSED/);
  },
);

test.serial('a missing bundle is reported, not a stack trace', (t) => {
  const r = run([], { KVMP_GPU_CHECK_BUNDLE: join(bundle, 'nope') });
  t.is(r.status, 3);
  t.regex(r.stdout, /FAIL: no bundle at/);
});
