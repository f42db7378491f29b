import { setTimeout as sleep } from 'node:timers/promises';
import type { KvLayoutInfo, KvMemory } from '../../api.js';
import { CudaUnavailableError } from '../../cuda/cuda-error.js';
import {
  CU_EVENT_DEFAULT,
  CU_EVENT_DISABLE_TIMING,
  CU_EVENT_INTERPROCESS,
  CU_MEMHOSTREGISTER_PORTABLE,
  CU_STREAM_NON_BLOCKING,
  type CudaDriver,
  type CuHandle,
  type DevicePtr,
  loadCudaDriver,
} from '../../cuda/driver.js';
import { KV_COPY_PTX } from '../../cuda/kv-copy-ptx.generated.js';
import type { ResolvedCopy } from '../../layout/copy-plan.js';
import { KvValidationError } from '../../layout/validation-error.js';
import type { OpReporter } from '../../shared/op-reporter.js';
import type { Backend } from '../backend.js';
import { CompletionPoller } from './completion-poller.js';
import { CudaInstance } from './cuda-instance.js';
import { ARGS_BYTES, KERNEL_SUFFIX, MAX_BLOCKS_PER_CHUNK, MAX_LAYERS_PER_LAUNCH, packCopyArgs } from './kernel-args.js';
import { StreamClock } from './stream-clock.js';

/** How long an exported done event stays alive after completion for the engine to open and wait on it. */
const DONE_EVENT_GRACE_MS = 60_000;
/** How long unregister/close wait for a stream to drain (e.g. a store waiting on a dead engine's event). */
const DRAIN_TIMEOUT_MS = 10_000;
const THREADS_PER_CTA = 256;

/** Builds the cuda backend on the calling (GPU worker) thread. Throws "no CUDA driver found: …" when unusable. */
export function createCudaBackend(ordinal: number): Backend {
  const cuda = loadCudaDriver();
  const count = cuda.deviceCount();
  if (count === 0) throw new CudaUnavailableError('the driver reports no CUDA devices');
  if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= count) {
    throw new CudaUnavailableError(`device ${ordinal} does not exist (${count} devices)`);
  }
  return new CudaBackend(cuda, ordinal);
}

interface HostSegment {
  readonly sab: SharedArrayBuffer;
  readonly view: Uint8Array;
}

class CudaBackend implements Backend {
  readonly kind = 'cuda';
  readonly device: string;
  readonly maxBlocksPerChunk = MAX_BLOCKS_PER_CHUNK;
  private readonly dev: number;
  private readonly uuid: string;
  private readonly module: CuHandle;
  private readonly kernels = new Map<string, CuHandle>();
  private readonly clock: StreamClock;
  private readonly poller = new CompletionPoller();
  private readonly segments: HostSegment[] = [];
  private readonly instances = new Map<string, CudaInstance>();
  /** IPC mappings by handle (hex), shared by layers and instances that export the same allocation. */
  private readonly mappings = new Map<string, { ptr: DevicePtr; refs: number }>();
  private readonly doneEvents: { event: CuHandle; destroyAtMs: number }[] = [];
  private readonly argsScratch = new Uint8Array(ARGS_BYTES);
  /** Bytes/s, exponentially averaged over completed copies; seeds completion predictions. */
  private bandwidth = 20e9;
  private warnedRange = false;

  constructor(
    private readonly cuda: CudaDriver,
    ordinal: number,
  ) {
    this.dev = cuda.deviceGet(ordinal);
    const ctx = cuda.primaryCtxRetain(this.dev);
    cuda.ctxSetCurrent(ctx);
    this.uuid = cuda.deviceUuid(this.dev);
    const [major, minor] = cuda.deviceComputeCapability(this.dev);
    const v = cuda.driverVersion;
    this.device = `${cuda.deviceName(this.dev)} (sm_${major}${minor}, driver API ${Math.floor(v / 1000)}.${(v % 1000) / 10})`;
    this.module = cuda.moduleLoadData(new TextEncoder().encode(`${KV_COPY_PTX}\0`));
    for (const dir of ['gather', 'scatter']) {
      for (const suffix of Object.values(KERNEL_SUFFIX)) {
        const name = `kvmp_${dir}_${suffix}`;
        this.kernels.set(name, cuda.moduleGetFunction(this.module, name));
      }
    }
    this.clock = new StreamClock(cuda);
  }

  addHostSegments(segments: readonly SharedArrayBuffer[]): void {
    segments.forEach((sab, i) => {
      if (!(sab instanceof SharedArrayBuffer))
        throw new KvValidationError(`segments[${i}]`, 'must be a SharedArrayBuffer');
    });
    const pinned: Uint8Array[] = [];
    try {
      for (const sab of segments) {
        const view = new Uint8Array(sab);
        // koffi passes the SAB's backing store, which never moves: the registration stays valid.
        this.cuda.memHostRegister(view, CU_MEMHOSTREGISTER_PORTABLE);
        pinned.push(view);
      }
    } catch (error) {
      for (const view of pinned) this.cuda.memHostUnregister(view);
      throw error;
    }
    pinned.forEach((view, i) => {
      this.segments.push({ sab: segments[i], view });
    });
  }

  hostSegmentBytes(): readonly number[] {
    return this.segments.map((s) => s.view.byteLength);
  }

  registerInstance(instanceId: string, layout: KvLayoutInfo, memory: KvMemory): void {
    if (memory?.backend !== 'cuda') {
      throw new KvValidationError(
        'memory.backend',
        `the cuda backend needs cuda memory, got ${String(memory?.backend)}`,
      );
    }
    if (!Array.isArray(memory.layers) || memory.layers.length !== layout.numLayers) {
      throw new KvValidationError(
        'memory.layers',
        `expected ${layout.numLayers} layers, got ${Array.isArray(memory.layers) ? memory.layers.length : typeof memory.layers}`,
      );
    }
    memory.layers.forEach((layer, i) => {
      if (!(layer?.ipcHandle instanceof Uint8Array) || layer.ipcHandle.byteLength !== 64) {
        throw new KvValidationError(
          `memory.layers[${i}].ipcHandle`,
          'must be a 64-byte Uint8Array (cudaIpcMemHandle_t)',
        );
      }
      if (!Number.isSafeInteger(layer.offset) || layer.offset < 0) {
        throw new KvValidationError(
          `memory.layers[${i}].offset`,
          `must be an integer >= 0, got ${String(layer.offset)}`,
        );
      }
    });
    // IPC handles only open on the device that exported them; say so plainly instead of a CUDA error.
    if (memory.deviceUuid !== undefined && normalizeUuid(memory.deviceUuid) !== normalizeUuid(this.uuid)) {
      throw new KvValidationError(
        'memory.deviceUuid',
        `KV cache is on ${memory.deviceUuid} but this GPU worker drives ${this.uuid}`,
      );
    }
    const opened: DevicePtr[] = [];
    try {
      const layerPtrs = memory.layers.map((layer, i) => {
        const base = this.openMapping(layer.ipcHandle);
        opened.push(base);
        // A kernel writing past the exported allocation would corrupt the engine's memory.
        const bytes = this.allocationBytes(base);
        if (bytes !== undefined && layer.offset + layout.layerBytes > bytes) {
          throw new KvValidationError(
            `memory.layers[${i}]`,
            `offset ${layer.offset} + ${layout.layerBytes} layer bytes (shape [${layout.layerShape.join(', ')}] of ${layout.dtype}) run past the exported allocation of ${bytes} bytes`,
          );
        }
        return base + BigInt(layer.offset);
      });
      const stream = this.cuda.streamCreate(CU_STREAM_NON_BLOCKING);
      this.instances.set(instanceId, new CudaInstance(instanceId, layout, stream, layerPtrs, opened));
    } catch (error) {
      for (const ptr of opened) this.closeMapping(ptr);
      throw error;
    }
  }

  async unregisterInstance(instanceId: string): Promise<void> {
    const inst = this.instances.get(instanceId);
    if (inst === undefined) return;
    this.instances.delete(instanceId);
    await this.drainAndRelease(inst, `instance ${instanceId} unregistered`);
  }

  checkCopy(copy: ResolvedCopy): void {
    if (copy.waitEvent !== undefined && copy.waitEvent.buffer instanceof SharedArrayBuffer) {
      throw new KvValidationError('waitEvent', 'the cuda backend waits on CUDA IPC event handles, not CPU events');
    }
  }

  submit(instanceId: string, copy: ResolvedCopy, reporter: OpReporter): void {
    const inst = this.instances.get(instanceId);
    if (inst === undefined) {
      reporter.fail('unknown_instance', `instance ${instanceId} is not registered`);
      return;
    }
    const { cuda } = this;
    const start = cuda.eventCreate(CU_EVENT_DEFAULT);
    const end = cuda.eventCreate(CU_EVENT_DEFAULT);
    const done = cuda.eventCreate(CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS);
    // Before the op's events are recorded, so their elapsed times from it are never negative.
    const anchor = this.clock.acquire();
    let startRecorded = false;
    let enqueueError: string | undefined;
    try {
      const staging = inst.ensureStaging(cuda, copy.chunkBytes);
      if (copy.waitEvent !== undefined) {
        // The engine's event (e.g. end of its forward pass): the stream waits on the GPU, no CPU sync.
        const engineEvent = cuda.ipcOpenEventHandle(copy.waitEvent);
        try {
          cuda.streamWaitEvent(inst.stream, engineEvent);
        } finally {
          cuda.eventDestroy(engineEvent);
        }
      }
      cuda.eventRecord(start, inst.stream);
      startRecorded = true;
      for (let c = 0; c < copy.numChunks; c++) this.enqueueChunk(inst, copy, c, staging);
    } catch (error) {
      // Work enqueued so far still runs; the END below orders the failure after it.
      enqueueError = (error as Error).message;
    }
    let doneHandle: Uint8Array;
    try {
      cuda.eventRecord(end, inst.stream);
      cuda.eventRecord(done, inst.stream);
      doneHandle = cuda.ipcGetEventHandle(done);
    } catch (error) {
      for (const e of [start, end, done]) this.destroyQuietly(e);
      this.clock.release(anchor);
      reporter.fail('copy_failed', `${copy.direction} could not be enqueued: ${(error as Error).message}`);
      return;
    }
    const now = Date.now();
    const predictedDoneMs = Math.max(now, inst.predictedIdleMs) + (copy.bytes / this.bandwidth) * 1e3;
    inst.predictedIdleMs = predictedDoneMs;
    let pollError: string | undefined;
    inst.inflight.push({
      predictedDoneMs,
      poll: () => {
        try {
          return cuda.eventQuery(end);
        } catch (error) {
          pollError = (error as Error).message;
          return true;
        }
      },
      complete: () => {
        let startNs: number;
        let endNs: number;
        try {
          endNs = this.clock.epochNs(anchor, end);
          startNs = startRecorded ? this.clock.epochNs(anchor, start) : endNs;
        } catch {
          endNs = Date.now() * 1e6;
          startNs = endNs;
        }
        this.destroyQuietly(start);
        this.destroyQuietly(end);
        this.destroyQuietly(anchor, (a) => this.clock.release(a));
        this.doneEvents.push({ event: done, destroyAtMs: Date.now() + DONE_EVENT_GRACE_MS });
        this.sweepDoneEvents();
        const error = enqueueError ?? pollError;
        if (error === undefined && endNs > startNs && copy.bytes > 0) {
          this.bandwidth = 0.8 * this.bandwidth + 0.2 * (copy.bytes / ((endNs - startNs) / 1e9));
        }
        reporter.finish({
          ok: error === undefined,
          ...(error === undefined ? {} : { failure: 'copy_failed' as const, error }),
          start: toEpoch(startNs),
          end: toEpoch(endNs),
          doneEvent: doneHandle,
        });
      },
      abandon: (reason) => {
        // Events are not destroyed: the GPU may still record them.
        const t = toEpoch(Date.now() * 1e6);
        reporter.finish({ ok: false, failure: 'cancelled', error: reason, start: t, end: t, doneEvent: doneHandle });
      },
    });
    this.poller.watch(inst.inflight);
  }

  async close(): Promise<void> {
    const instances = [...this.instances.values()];
    this.instances.clear();
    for (const inst of instances) await this.drainAndRelease(inst, 'gpu worker closed');
    this.poller.stop();
    for (const { view } of this.segments.splice(0)) this.destroyQuietly(view, (v) => this.cuda.memHostUnregister(v));
    for (const { event } of this.doneEvents.splice(0)) this.destroyQuietly(event);
    this.destroyQuietly(this.clock, (c) => c.destroy());
    this.destroyQuietly(this.module, (m) => this.cuda.moduleUnload(m));
    this.destroyQuietly(this.dev, (d) => this.cuda.primaryCtxRelease(d));
  }

  private enqueueChunk(inst: CudaInstance, copy: ResolvedCopy, c: number, staging: DevicePtr): void {
    const { cuda } = this;
    const { layout, chunkTokens, blocksPerChunk } = copy;
    const segment = this.segments[copy.chunkSegments[c]].view;
    const host = segment.subarray(copy.chunkOffsets[c], copy.chunkOffsets[c] + copy.chunkBytes);
    const skip = Math.min(Math.max(copy.skipTokens - c * chunkTokens, 0), chunkTokens);
    if (skip === chunkTokens) return;
    const gather = copy.direction === 'store';
    const kernel = this.kernels.get(`kvmp_${gather ? 'gather' : 'scatter'}_${KERNEL_SUFFIX[inst.unit]}`);
    const blockIds = copy.blockIds.subarray(c * blocksPerChunk, (c + 1) * blocksPerChunk);
    if (!gather) cuda.memcpyHtoDAsync(staging, host, inst.stream);
    for (let base = 0; base < layout.numLayers; base += MAX_LAYERS_PER_LAUNCH) {
      const layers = inst.layerPtrs.slice(base, base + MAX_LAYERS_PER_LAUNCH);
      const args = packCopyArgs(
        {
          staging,
          layers,
          layerBase: base,
          totalLayers: layout.numLayers,
          numBlocks: layout.numBlocks,
          blockSize: layout.blockSize,
          rowUnits: layout.rowBytes / inst.unit,
          chunkTokens,
          skipTokens: skip,
          blockIds,
        },
        this.argsScratch,
      );
      cuda.launchKernel(
        kernel,
        [blocksPerChunk, layers.length, layout.kvSize],
        [THREADS_PER_CTA, 1, 1],
        inst.stream,
        args,
      );
    }
    if (gather) cuda.memcpyDtoHAsync(host, staging, inst.stream);
  }

  /** Waits (polling, bounded) for the instance's in-flight work, then frees its resources. */
  private async drainAndRelease(inst: CudaInstance, reason: string): Promise<void> {
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (inst.inflight.length > 0 && Date.now() < deadline) {
      this.poller.pollNow();
      if (inst.inflight.length > 0) await sleep(1);
    }
    this.poller.unwatch(inst.inflight);
    if (inst.inflight.length > 0) {
      // The GPU may still touch these buffers (e.g. waiting on an engine event that never fires):
      // report the operations failed and leak the instance's device resources rather than free
      // memory a queued kernel will write.
      for (const op of inst.inflight.splice(0)) op.abandon(`${reason} while its GPU work was still pending`);
      console.warn(
        `gpu-worker: ${reason} with GPU work still pending after ${DRAIN_TIMEOUT_MS} ms; leaking its stream and buffers`,
      );
      return;
    }
    inst.release(this.cuda, (ptr) => this.closeMapping(ptr));
  }

  /** Size of an opened IPC allocation; undefined (check skipped, warned once) if the driver will not say. */
  private allocationBytes(base: DevicePtr): number | undefined {
    try {
      return this.cuda.memGetAddressRange(base).bytes;
    } catch (error) {
      if (!this.warnedRange)
        console.warn(`gpu-worker: cannot size IPC allocations, bounds unchecked: ${(error as Error).message}`);
      this.warnedRange = true;
      return undefined;
    }
  }

  private openMapping(handle: Uint8Array): DevicePtr {
    const key = Buffer.from(handle.buffer, handle.byteOffset, 64).toString('hex');
    const existing = this.mappings.get(key);
    if (existing !== undefined) {
      existing.refs++;
      return existing.ptr;
    }
    const ptr = this.cuda.ipcOpenMemHandle(handle);
    this.mappings.set(key, { ptr, refs: 1 });
    return ptr;
  }

  private closeMapping(ptr: DevicePtr): void {
    for (const [key, m] of this.mappings) {
      if (m.ptr !== ptr) continue;
      if (--m.refs === 0) {
        this.mappings.delete(key);
        this.destroyQuietly(ptr, (p) => this.cuda.ipcCloseMemHandle(p));
      }
      return;
    }
  }

  private sweepDoneEvents(): void {
    const now = Date.now();
    while (this.doneEvents.length > 0 && this.doneEvents[0].destroyAtMs <= now) {
      const item = this.doneEvents.shift();
      if (item !== undefined) this.destroyQuietly(item.event);
    }
  }

  private destroyQuietly<T>(thing: T, destroy: (t: T) => void = (e) => this.cuda.eventDestroy(e)): void {
    try {
      destroy(thing);
    } catch (error) {
      console.warn(`gpu-worker: cleanup failed: ${(error as Error).message}`);
    }
  }
}

function normalizeUuid(uuid: string): string {
  return String(uuid).toLowerCase().replace(/^gpu-/, '').replaceAll('-', '');
}

function toEpoch(ns: number): [number, number] {
  const sec = Math.floor(ns / 1e9);
  const nsec = Math.min(Math.round(ns - sec * 1e9), 999_999_999);
  return [sec, nsec];
}
