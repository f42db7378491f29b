import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

export const KVMP_BIN = fileURLToPath(new URL('../../bin/kvmp.js', import.meta.url));

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly endpoint: string;
  readonly httpUrl: string | undefined;
  /** Everything printed on stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code once the process exited. */
  readonly exited: Promise<number | null>;
  /** Resolves once stdout contains `text` (rejects if the process exits first). */
  waitFor(text: string): Promise<void>;
}

/** Spawns `kvmp serve` and waits for its "kvmp ready" line; always killed at teardown. */
export async function spawnServe(
  t: ExecutionContext,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [KVMP_BIN, 'serve', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (out.includes('kvmp ready')) resolve();
    };
    child.stdout?.on('data', check);
    void exited.then((code) => reject(new Error(`kvmp serve exited (${code}) before ready:\n${out}\n${err}`)));
  });
  const endpoint = /zmq\s+(\S+)/.exec(out)?.[1] ?? '';
  const httpUrl = /http\s+(http:\/\/[^/\s]+)/.exec(out)?.[1];
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (out.includes(text)) resolve();
      };
      child.stdout?.on('data', check);
      check();
      void exited.then(() => {
        if (!out.includes(text)) reject(new Error(`kvmp serve exited before "${text}"`));
      });
    });
  return { child, endpoint, httpUrl, stdout: () => out, stderr: () => err, exited, waitFor };
}

/** Runs `kvmp <args>` to completion. */
export function runKvmp(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [KVMP_BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // A command expected to exit must not outlive the test.
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}
