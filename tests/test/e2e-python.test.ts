/**
 * The protocol document is enough for another language: a Python connector written from
 * docs/protocol.md (pyzmq + msgpack + numpy) runs the engine-driven flow against `kvmp serve`
 * and gets its bytes back. Needs Debian's python3-zmq, python3-msgpack and python3-numpy;
 * without them the test says so and passes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const BIN = fileURLToPath(new URL('../../../packages/server/bin/kvmp.js', import.meta.url));
const CONNECTOR = fileURLToPath(new URL('../../test/fixtures/e2e-python-connector.py', import.meta.url));

function findPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import zmq, msgpack, numpy'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

test('a Python connector written from docs/protocol.md stores and retrieves through kvmp serve', async (t) => {
  const python = findPython();
  if (python === undefined) {
    t.log(
      'python3 with zmq, msgpack and numpy not found (apt-get install python3-zmq python3-msgpack python3-numpy): not run',
    );
    t.pass();
    return;
  }
  const server = spawn(
    process.execPath,
    [BIN, 'serve', '--port', '0', '--no-http', '--chunk-size', '64', '--l1-size-gb', '0.0625', '--hash-threads', '1'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.teardown(() => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('kvmp ready')) resolve();
    });
    server.once('exit', (code) => reject(new Error(`kvmp serve exited ${code}`)));
  });
  const endpoint = /zmq\s+(\S+)/.exec(out)?.[1] ?? '';
  const py = spawn(python, [CONNECTOR, endpoint], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (py.exitCode === null && py.signalCode === null) py.kill('SIGKILL');
  });
  let pyOut = '';
  let pyErr = '';
  py.stdout.on('data', (d: Buffer) => {
    pyOut += d.toString();
  });
  py.stderr.on('data', (d: Buffer) => {
    pyErr += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => py.once('exit', resolve));
  t.is(code, 0, pyErr);
  const report = JSON.parse(pyOut.trim()) as {
    chunk_size: number;
    first: { hit: number; stored: number; corrupt: number };
    second: { hit: number; stored: number; corrupt: number };
    bad_range: string;
  };
  t.is(report.chunk_size, 64);
  t.deepEqual(report.first, { hit: 0, stored: 3, corrupt: 0 });
  t.deepEqual(report.second, { hit: 192, stored: 0, corrupt: 0 });
  t.is(report.bad_range, 'BAD_RANGE');
  server.kill('SIGTERM');
  t.is(await new Promise<number | null>((resolve) => server.once('exit', resolve)), 0);
});
