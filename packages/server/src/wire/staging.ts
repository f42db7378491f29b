import { chunkBytes, kvPlanes, tokenBytes } from '../engine/layout.js';
import type { KvLayoutSpec } from '../gpu/contract.js';
import { WireError } from './wire-error.js';

/**
 * Server-side stand-in for the paged KV cache of an engine-driven instance (an engine with no
 * GPU memory the server could map). The server owns `slots` chunk-sized block ranges in
 * SharedArrayBuffers registered with the core like an in-process engine's layers, so KV bytes
 * that arrive in messages go through the core's normal store and retrieve (same locking,
 * events, spans and metrics as any other engine). Slot s covers engine blocks
 * `[s * blocksPerChunk, (s + 1) * blocksPerChunk)`.
 *
 * Wire chunk format (one chunk): `[planes, num_layers, chunk_size, hidden]` row-major in the
 * layout's dtype (planes = 2, K then V, for flash_attn; 1 for mla). A message carries chunks
 * back to back.
 */
export class Staging {
  readonly layout: KvLayoutSpec;
  readonly chunkTokens: number;
  readonly slots: number;
  readonly blocksPerChunk: number;
  readonly chunkBytes: number;
  readonly layers: readonly SharedArrayBuffer[];
  private readonly views: readonly Uint8Array[];
  private readonly free: number[];
  private readonly waiters: {
    n: number;
    resolve: (slots: number[]) => void;
    reject: (err: Error) => void;
    timer: NodeJS.Timeout;
  }[] = [];
  private readonly drained: (() => void)[] = [];
  private closed = false;
  private readonly runBytes: number;
  private readonly planeBytes: number;

  constructor(layout: KvLayoutSpec, chunkTokens: number, slots: number) {
    this.chunkTokens = chunkTokens;
    this.slots = slots;
    this.blocksPerChunk = chunkTokens / layout.blockSize;
    this.layout = { ...layout, numBlocks: slots * this.blocksPerChunk };
    this.chunkBytes = chunkBytes(layout, chunkTokens);
    this.runBytes = chunkTokens * tokenBytes(layout);
    this.planeBytes = this.layout.numBlocks * layout.blockSize * tokenBytes(layout);
    const layerBytes = kvPlanes(layout) * this.planeBytes;
    this.layers = Array.from({ length: layout.numLayers }, () => new SharedArrayBuffer(layerBytes));
    this.views = this.layers.map((sab) => new Uint8Array(sab));
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  }

  get freeSlots(): number {
    return this.free.length;
  }

  /**
   * `n` slots, waiting up to `timeoutMs` for others to be released (FIFO, so a large request is
   * not starved by small ones). `BUSY` if they do not free up in time.
   */
  acquire(n: number, timeoutMs: number): Promise<number[]> {
    if (this.closed) return Promise.reject(new WireError('UNKNOWN_INSTANCE', 'the instance was unregistered'));
    if (n > this.slots) {
      return Promise.reject(
        new WireError('FRAME_TOO_LARGE', `${n} chunks exceed the staging area (${this.slots} chunks); split the range`),
      );
    }
    if (this.waiters.length === 0 && this.free.length >= n) return Promise.resolve(this.free.splice(-n, n));
    return new Promise((resolve, reject) => {
      const waiter = {
        n,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new WireError('BUSY', `the engine-driven staging area stayed full for ${timeoutMs} ms; retry`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  release(slots: readonly number[]): void {
    this.free.push(...slots);
    if (this.closed) {
      if (this.free.length === this.slots) for (const f of this.drained.splice(0)) f();
      return;
    }
    while (this.waiters.length > 0 && this.free.length >= this.waiters[0].n) {
      const w = this.waiters.shift();
      if (w === undefined) break;
      clearTimeout(w.timer);
      w.resolve(this.free.splice(-w.n, w.n));
    }
  }

  /** Engine block ids covering the slots, in order: what the core's store/retrieve take. */
  blockIds(slots: readonly number[]): number[] {
    const ids: number[] = [];
    for (const s of slots) for (let b = 0; b < this.blocksPerChunk; b++) ids.push(s * this.blocksPerChunk + b);
    return ids;
  }

  /** Scatters `data` (chunks back to back, wire format) into the slots. */
  write(slots: readonly number[], data: Uint8Array): void {
    const planes = kvPlanes(this.layout);
    let src = 0;
    for (const s of slots) {
      for (let p = 0; p < planes; p++) {
        for (let l = 0; l < this.views.length; l++) {
          const dst = p * this.planeBytes + s * this.runBytes;
          this.views[l].set(data.subarray(src, src + this.runBytes), dst);
          src += this.runBytes;
        }
      }
    }
  }

  /** Gathers the slots' chunks, in wire format, into `out` (`slots.length * chunkBytes` bytes). */
  readInto(slots: readonly number[], out: Uint8Array): void {
    const planes = kvPlanes(this.layout);
    let dst = 0;
    for (const s of slots) {
      for (let p = 0; p < planes; p++) {
        for (let l = 0; l < this.views.length; l++) {
          const src = p * this.planeBytes + s * this.runBytes;
          out.set(this.views[l].subarray(src, src + this.runBytes), dst);
          dst += this.runBytes;
        }
      }
    }
  }

  /**
   * Refuses new acquisitions, fails every waiter, and resolves once every slot is back: no
   * copy still reads or writes this staging area (the instance is being replaced or removed).
   */
  close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new WireError('UNKNOWN_INSTANCE', 'the instance was unregistered'));
    }
    if (this.free.length === this.slots) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }
}
