import type { IpcEventHandle } from '../api.js';

/**
 * The cpu backend's stand-in for a CUDA IPC event: 64 bytes of SharedArrayBuffer (the size of a
 * cudaIpcEventHandle_t, so plans look the same on both backends) whose first int32 is 0 until
 * the event is signalled. Structured clone shares the memory, so an engine thread, the server
 * and the GPU worker all see the same event.
 */
export function createCpuEvent(): IpcEventHandle {
  return new Uint8Array(new SharedArrayBuffer(64));
}

export function isCpuEvent(handle: unknown): handle is IpcEventHandle {
  return handle instanceof Uint8Array && handle.buffer instanceof SharedArrayBuffer && handle.byteLength === 64;
}

function word(handle: IpcEventHandle): Int32Array {
  if (!isCpuEvent(handle))
    throw new TypeError('not a CPU event (expected a 64-byte Uint8Array over a SharedArrayBuffer)');
  return new Int32Array(handle.buffer, handle.byteOffset, 1);
}

/** Marks the event done and wakes every waiter (engine side: "the forward pass wrote the KV"). */
export function signalCpuEvent(handle: IpcEventHandle): void {
  const w = word(handle);
  Atomics.store(w, 0, 1);
  Atomics.notify(w, 0);
}

export function cpuEventSignalled(handle: IpcEventHandle): boolean {
  return Atomics.load(word(handle), 0) !== 0;
}

/**
 * Resolves true once the event is signalled, or false if `signal` aborts first; never blocks the
 * thread. `Atomics.waitAsync` alone does not keep a worker thread alive, so callers hold a
 * keep-alive while they wait.
 */
export async function waitCpuEvent(handle: IpcEventHandle, signal?: AbortSignal): Promise<boolean> {
  const w = word(handle);
  while (Atomics.load(w, 0) === 0) {
    if (signal?.aborted) return false;
    const r = Atomics.waitAsync(w, 0, 0);
    if (!r.async) continue;
    if (signal === undefined) {
      await r.value;
      continue;
    }
    await new Promise<void>((resolve) => {
      const onAbort = (): void => resolve();
      signal.addEventListener('abort', onAbort, { once: true });
      void r.value.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
  return true;
}
