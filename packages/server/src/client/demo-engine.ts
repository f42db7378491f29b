import type { TraceCarrier } from '@kvmp/tracing';
import { chunkBytes } from '../engine/layout.js';
import type { KvLayoutSpec } from '../gpu/contract.js';
import type { KvmpClient } from './kvmp-client.js';
import type { EngineDrivenInfo, WireLayout } from './types.js';

export interface DemoEngineOptions {
  readonly instanceId?: string;
  readonly modelName?: string;
  readonly layout?: WireLayout;
  /** KV contents depend on it: engines that must agree on KV share it. */
  readonly seed?: number;
}

export interface DemoRequestReport {
  readonly requestId: string;
  readonly promptTokens: number;
  readonly hitTokens: number;
  readonly storedChunks: number;
  readonly dedupedChunks: number;
  /** Retrieved chunks whose bytes differ from what the engine would have computed (0 = correct). */
  readonly corruptChunks: number;
}

export const DEMO_LAYOUT: WireLayout = {
  kind: 'flash_attn',
  numLayers: 4,
  blockSize: 16,
  numHeads: 4,
  headSize: 32,
  dtype: 'fp16',
};

function toSpec(l: WireLayout): KvLayoutSpec {
  const base = { numLayers: l.numLayers, numBlocks: l.numBlocks ?? 1, blockSize: l.blockSize, dtype: l.dtype };
  return l.kind === 'mla'
    ? { kind: 'mla', ...base, headDim: l.headDim ?? 0 }
    : { kind: 'flash_attn', ...base, numHeads: l.numHeads ?? 0, headSize: l.headSize ?? 0 };
}

/**
 * A CPU "engine" in engine-driven mode over the wire: its KV for a chunk is a deterministic
 * function of the token prefix up to that chunk's end and the seed, so anything it retrieves
 * can be checked byte for byte against what it would have computed. Used by `kvmp demo`, the
 * end-to-end test, the fuzz test's closing flow and `bench:wire`.
 */
export class DemoEngine {
  readonly instanceId: string;
  readonly modelName: string;
  readonly layout: WireLayout;
  readonly seed: number;
  private info: EngineDrivenInfo | undefined;
  private readonly client: KvmpClient;

  constructor(client: KvmpClient, options: DemoEngineOptions = {}) {
    this.client = client;
    this.instanceId = options.instanceId ?? 'demo-engine-0';
    this.modelName = options.modelName ?? 'demo-model';
    this.layout = options.layout ?? DEMO_LAYOUT;
    this.seed = options.seed ?? 1;
  }

  async register(): Promise<EngineDrivenInfo> {
    this.info = await this.client.registerEngineDriven({
      instanceId: this.instanceId,
      modelName: this.modelName,
      layout: this.layout,
    });
    return this.info;
  }

  get chunkSize(): number {
    if (this.info === undefined) throw new Error('register() first');
    return this.info.chunkSize;
  }

  /** The KV bytes of chunks `[first, first + n)` of a prompt (wire chunk format). */
  computeChunks(tokens: Uint32Array, first: number, n: number): Uint8Array {
    const cs = this.chunkSize;
    const bytes = chunkBytes(toSpec(this.layout), cs);
    const out = new Uint8Array(n * bytes);
    const words = new Uint32Array(out.buffer);
    const wordsPerChunk = bytes / 4;
    // Prefix hash up to each chunk end (FNV-1a over the token ids), then an xorshift stream.
    let h = 0x811c9dc5 ^ this.seed;
    for (let t = 0; t < first * cs; t++) h = Math.imul(h ^ tokens[t], 0x01000193) >>> 0;
    for (let c = 0; c < n; c++) {
      for (let t = (first + c) * cs; t < (first + c + 1) * cs; t++) h = Math.imul(h ^ tokens[t], 0x01000193) >>> 0;
      let x = h || 1;
      const base = c * wordsPerChunk;
      for (let w = 0; w < wordsPerChunk; w++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[base + w] = x >>> 0;
      }
    }
    return out;
  }

  /**
   * One request the way an engine connector runs it: LOOKUP, QUERY_PREFETCH_STATUS, retrieve
   * the hit prefix (verified), "compute" the rest, store it, END_SESSION.
   */
  async runRequest(
    requestId: string,
    prompt: Uint32Array,
    options: { cacheSalt?: string; trace?: TraceCarrier } = {},
  ): Promise<DemoRequestReport> {
    const cs = this.chunkSize;
    const common = {
      requestId,
      tokens: prompt,
      ...(options.cacheSalt === undefined ? {} : { cacheSalt: options.cacheSalt }),
      ...(options.trace === undefined ? {} : { trace: options.trace }),
    };
    await this.client.lookup({ ...common, modelName: this.modelName });
    const q = await this.client.queryPrefetchStatus(requestId);
    const hitChunks = q.hitChunks ?? 0;
    let corrupt = 0;
    if (hitChunks > 0) {
      const r = await this.client.retrieveData({
        ...common,
        instanceId: this.instanceId,
        start: 0,
        end: hitChunks * cs,
      });
      const expect = this.computeChunks(prompt, 0, hitChunks);
      corrupt = r.ok && r.data ? countCorrupt(r.data, expect, hitChunks) : hitChunks;
    }
    const full = Math.floor(prompt.length / cs);
    let stored = 0;
    let deduped = 0;
    if (full > hitChunks) {
      const data = this.computeChunks(prompt, hitChunks, full - hitChunks);
      const s = await this.client.storeData(
        { ...common, instanceId: this.instanceId, start: hitChunks * cs, end: full * cs },
        data,
      );
      stored = s.storedChunks;
      deduped = s.dedupedChunks;
    }
    await this.client.endSession(requestId, options.trace === undefined ? {} : { trace: options.trace });
    return {
      requestId,
      promptTokens: prompt.length,
      hitTokens: hitChunks * cs,
      storedChunks: stored,
      dedupedChunks: deduped,
      corruptChunks: corrupt,
    };
  }
}

function countCorrupt(got: Uint8Array, expect: Uint8Array, chunks: number): number {
  if (got.length !== expect.length) return chunks;
  const per = expect.length / chunks;
  let bad = 0;
  for (let c = 0; c < chunks; c++) {
    if (Buffer.compare(got.subarray(c * per, (c + 1) * per), expect.subarray(c * per, (c + 1) * per)) !== 0) bad++;
  }
  return bad;
}

/**
 * A prompt of `length` tokens: the first `sharedTokens` come from `prefixId` (so prompts with
 * the same prefix id share KV), the rest are unique to `uniqueId`.
 */
export function demoPrompt(prefixId: number, uniqueId: number, length: number, sharedTokens: number): Uint32Array {
  const out = new Uint32Array(length);
  let x = (prefixId * 2654435761 + 12345) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    if (i === sharedTokens) x = (uniqueId * 2246822519 + 0x9e3779b9) >>> 0 || 7;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) % 128_000;
  }
  return out;
}
