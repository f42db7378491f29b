import type { KvLayoutInfo, KvMemory } from '../../api.js';
import type { ResolvedCopy } from '../../layout/copy-plan.js';
import { KvValidationError } from '../../layout/validation-error.js';
import { isCpuEvent } from '../../shared/cpu-event.js';
import type { OpReporter } from '../../shared/op-reporter.js';
import type { Backend } from '../backend.js';
import { CpuStream } from './cpu-stream.js';

/**
 * "Device" memory is the engine's per-layer SharedArrayBuffers in the GPU layout; copies are real
 * byte copies on this (the GPU worker) thread, one FIFO stream per instance.
 */
export class CpuBackend implements Backend {
  readonly kind = 'cpu';
  readonly device = 'cpu';
  readonly maxBlocksPerChunk = undefined;
  private readonly segments: Uint8Array[] = [];
  private readonly streams = new Map<string, CpuStream>();

  addHostSegments(segments: readonly SharedArrayBuffer[]): void {
    segments.forEach((sab, i) => {
      if (!(sab instanceof SharedArrayBuffer))
        throw new KvValidationError(`segments[${i}]`, 'must be a SharedArrayBuffer');
    });
    for (const sab of segments) this.segments.push(new Uint8Array(sab));
  }

  hostSegmentBytes(): readonly number[] {
    return this.segments.map((s) => s.byteLength);
  }

  registerInstance(instanceId: string, layout: KvLayoutInfo, memory: KvMemory): void {
    if (memory?.backend !== 'cpu') {
      throw new KvValidationError('memory.backend', `the cpu backend needs cpu memory, got ${String(memory?.backend)}`);
    }
    if (!Array.isArray(memory.layers) || memory.layers.length !== layout.numLayers) {
      throw new KvValidationError(
        'memory.layers',
        `expected ${layout.numLayers} layer buffers, got ${Array.isArray(memory.layers) ? memory.layers.length : typeof memory.layers}`,
      );
    }
    const layers = memory.layers.map((sab, i) => {
      if (!(sab instanceof SharedArrayBuffer))
        throw new KvValidationError(`memory.layers[${i}]`, 'must be a SharedArrayBuffer');
      if (sab.byteLength !== layout.layerBytes) {
        throw new KvValidationError(
          `memory.layers[${i}]`,
          `is ${sab.byteLength} bytes; layer shape [${layout.layerShape.join(', ')}] of ${layout.dtype} needs ${layout.layerBytes}`,
        );
      }
      return new Uint8Array(sab);
    });
    this.streams.set(instanceId, new CpuStream(layers, () => this.segments));
  }

  async unregisterInstance(instanceId: string): Promise<void> {
    const stream = this.streams.get(instanceId);
    if (stream === undefined) return;
    this.streams.delete(instanceId);
    await stream.cancelAll(`instance ${instanceId} unregistered`);
  }

  checkCopy(copy: ResolvedCopy): void {
    if (copy.waitEvent !== undefined && !isCpuEvent(copy.waitEvent)) {
      throw new KvValidationError(
        'waitEvent',
        'the cpu backend waits on CPU events (createCpuEvent()), not CUDA IPC handles',
      );
    }
  }

  submit(instanceId: string, copy: ResolvedCopy, reporter: OpReporter): void {
    const stream = this.streams.get(instanceId);
    if (stream === undefined) reporter.fail('unknown_instance', `instance ${instanceId} is not registered`);
    else stream.enqueue(copy, reporter);
  }

  async close(): Promise<void> {
    const streams = [...this.streams.values()];
    this.streams.clear();
    await Promise.all(streams.map((s) => s.cancelAll('gpu worker closed')));
    this.segments.length = 0;
  }
}
