import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { KV_COPY_PTX } from '../src/cuda/kv-copy-ptx.generated.js';
import { isCudaUnavailable, NO_CUDA_DRIVER, spawnGpuWorker } from '../src/index.js';
import { ARGS_BYTES } from '../src/worker-thread/cuda/kernel-args.js';

const require = createRequire(import.meta.url);
const koffiLoaded = (): boolean => Object.keys(require.cache).some((k) => k.includes(`${'/koffi/'}`));
const kernels = fileURLToPath(new URL('../../kernels/', import.meta.url));
const has = (tool: string): boolean => {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

test.serial('importing the package loads neither koffi nor libcuda', (t) => {
  t.false(koffiLoaded());
});

test.serial('a missing driver is one clear error, not a crash, and the worker thread is gone', async (t) => {
  const previous = process.env.KVMP_LIBCUDA;
  process.env.KVMP_LIBCUDA = '/nonexistent/libcuda.so.1';
  try {
    const error = await t.throwsAsync(spawnGpuWorker({ backend: 'cuda' }));
    t.true(error?.message.startsWith(`${NO_CUDA_DRIVER}: cannot load /nonexistent/libcuda.so.1`), error?.message);
    t.true(isCudaUnavailable(error));
  } finally {
    if (previous === undefined) delete process.env.KVMP_LIBCUDA;
    else process.env.KVMP_LIBCUDA = previous;
  }
  t.false(koffiLoaded(), 'the caller thread never loaded koffi');
});

test.serial('the default library path reports the same error on this machine when it has no driver', async (t) => {
  let hasDriver = true;
  try {
    execFileSync('sh', ['-c', 'ldconfig -p | grep -q "libcuda.so.1 "']);
  } catch {
    hasDriver = false;
  }
  if (hasDriver || process.env.KVMP_LIBCUDA) return t.pass('a driver is installed here; nothing to check');
  const error = await t.throwsAsync(spawnGpuWorker({ backend: 'cuda' }));
  t.regex(error?.message ?? '', /^no CUDA driver found: cannot load libcuda\.so\.1/);
});

test('the committed PTX is what the generated module embeds, and declares the argument struct size', (t) => {
  t.is(readFileSync(join(kernels, 'kv_copy.ptx'), 'utf8'), KV_COPY_PTX);
  t.regex(KV_COPY_PTX, /^\.version 7\.8$/m);
  for (const dir of ['gather', 'scatter']) {
    for (const unit of ['u128', 'u32', 'u8']) {
      t.regex(
        KV_COPY_PTX,
        new RegExp(
          `\\.entry kvmp_${dir}_${unit}\\(\\s*\\.param \\.align 8 \\.b8 kvmp_${dir}_${unit}_param_0\\[${ARGS_BYTES}\\]`,
        ),
      );
    }
  }
});

const withNvcc = has('nvcc') && has('ptxas') ? test : test.skip;

withNvcc('kernel sources compile with nvcc and assemble with ptxas for sm_80 and sm_90', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmp-ptx-'));
  const ptx = join(dir, 'kv_copy.ptx');
  execFileSync('nvcc', ['-ptx', '-arch=compute_80', '-o', ptx, join(kernels, 'kv_copy.cu')]);
  for (const sm of ['sm_80', 'sm_90']) {
    t.notThrows(() => execFileSync('ptxas', [`-arch=${sm}`, '-o', join(dir, `${sm}.cubin`), ptx]));
    t.notThrows(() =>
      execFileSync('ptxas', [`-arch=${sm}`, '-o', join(dir, `committed-${sm}.cubin`), join(kernels, 'kv_copy.ptx')]),
    );
  }
});
