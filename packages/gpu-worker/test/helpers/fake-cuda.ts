/**
 * Builds test/native/fake_libcuda.cpp (a host-memory stand-in for libcuda.so.1 that runs the real
 * kernel source on the CPU) and gives the test thread a handle on it, to play the engine: allocate
 * "device" KV memory, export IPC handles, read memory back.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';

export interface FakeCuda {
  readonly path: string;
  alloc(bytes: number): bigint;
  write(ptr: bigint, bytes: Uint8Array): void;
  read(ptr: bigint, bytes: number): Uint8Array;
  /** A cudaIpcMemHandle_t for an allocation (the stand-in's format). */
  memHandle(ptr: bigint): Uint8Array;
  /** An exported interprocess event, as an engine would send with a store. */
  eventHandle(): Uint8Array;
  launches(): number;
  pinnedSegments(): number;
  openedEvents(): number;
}

export function hasCompiler(): boolean {
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function buildFakeCuda(): FakeCuda {
  const source = fileURLToPath(new URL('../../../test/native/fake_libcuda.cpp', import.meta.url));
  const path = join(mkdtempSync(join(tmpdir(), 'kvmp-fake-cuda-')), 'libcuda.so.1');
  execFileSync('g++', ['-shared', '-fPIC', '-O2', '-std=c++17', '-o', path, source]);
  const lib = koffi.load(path);
  const memAlloc = lib.func('int cuMemAlloc_v2(_Out_ uint64_t *p, size_t n)');
  const htod = lib.func('int cuMemcpyHtoD_v2(uint64_t d, const void *s, size_t n)');
  const dtoh = lib.func('int cuMemcpyDtoH_v2(_Out_ void *d, uint64_t s, size_t n)');
  const eventCreate = lib.func('int cuEventCreate(_Out_ void **e, unsigned int flags)');
  const ipcGetMem = lib.func('int cuIpcGetMemHandle(_Out_ uint8_t *h, uint64_t p)');
  const ipcGetEvent = lib.func('int cuIpcGetEventHandle(_Out_ uint8_t *h, void *e)');
  const launches = lib.func('int kvmp_fake_launches()');
  const registered = lib.func('int kvmp_fake_registered()');
  const opened = lib.func('int kvmp_fake_opened_events()');
  const ok = (rc: number): void => {
    if (rc !== 0) throw new Error(`fake libcuda call failed: ${rc}`);
  };
  return {
    path,
    alloc: (bytes) => {
      const p: (number | bigint)[] = [0];
      ok(memAlloc(p, bytes));
      return BigInt(p[0]);
    },
    write: (ptr, bytes) => ok(htod(ptr, bytes, bytes.byteLength)),
    read: (ptr, bytes) => {
      const out = new Uint8Array(bytes);
      ok(dtoh(out, ptr, bytes));
      return out;
    },
    memHandle: (ptr) => {
      const h = new Uint8Array(64);
      ok(ipcGetMem(h, ptr));
      return h;
    },
    eventHandle: () => {
      const e: unknown[] = [null];
      ok(eventCreate(e, 0x6));
      const h = new Uint8Array(64);
      ok(ipcGetEvent(h, e[0]));
      return h;
    },
    launches: () => launches() as number,
    pinnedSegments: () => registered() as number,
    openedEvents: () => opened() as number,
  };
}
