import {
  DISABLED_PUBLISHER,
  type DrainLogger,
  EventPipeline,
  type EventPublisher,
  type PipelineStats,
  type SubscriberSpec,
} from '@kvmp/tracing';
import { ActorRegistry } from './actors/actor-registry.js';
import { checkLayout, chunkBytes, layerBytes } from './engine/layout.js';
import { invalid, KvmpServerError } from './errors.js';
import type { GpuWorkerLike, KvLayoutSpec, KvMemory } from './gpu/contract.js';
import { startGpuWorker } from './gpu/start.js';
import { ChunkHasher } from './keys/chunk-hasher.js';
import { checkModelName } from './keys/object-key.js';
import { type L1Stats, L1Store } from './l1/l1-store.js';
import { slotBytesFor } from './l1/memory-pool.js';
import { createSessionState, type InstanceInfo, type ServerContext, type ServerCounters } from './ops/context.js';
import { checkLookup, type LookupRequest, lookupInSession, queryInSession, releaseHeldLocks } from './ops/lookup.js';
import { endInSession, expireIdleSessions } from './ops/session-end.js';
import {
  checkTransfer,
  type RetrieveRequest,
  type RetrieveResult,
  type StoreRequest,
  type StoreResult,
  submitRetrieve,
  submitStore,
} from './ops/transfer.js';
import { checkCount, checkInstanceId, checkRequestId } from './ops/validate.js';
import { HashPool, type HashPoolOptions } from './pool/hash-pool.js';
import { captureCaller } from './trace-context.js';

export interface L1Config {
  /** L1 capacity in bytes (required). */
  readonly capacityBytes: number;
  /** SharedArrayBuffer segment size; default min(capacity, 64 MiB). Each chunk must fit one segment. */
  readonly segmentBytes?: number;
  /** Read-lock TTL, ms (default 300 000). */
  readonly readTtlMs?: number;
  /** Write-lock TTL, ms (default 600 000). */
  readonly writeTtlMs?: number;
  /** Default 0.8. */
  readonly evictionWatermark?: number;
  /** Default 0.2. */
  readonly evictionRatio?: number;
}

export interface TracingConfig {
  /** Drain-thread subscribers, e.g. `requestTracingSubscriber(...)` from `@kvmp/tracing`. */
  readonly subscribers?: readonly SubscriberSpec[];
  /** Ring capacity in 64-byte slots (power of two). */
  readonly capacity?: number;
  readonly logger?: DrainLogger;
  /** Drain-thread nap between passes while events flow (ms; see EventPipelineOptions.napMs). */
  readonly napMs?: number;
  /** Longest drain-thread nap (ms; see EventPipelineOptions.maxNapMs). */
  readonly maxNapMs?: number;
  /** Use this already-created pipeline instead (the server starts it if needed and stops it on close). */
  readonly pipeline?: EventPipeline;
}

export interface CacheServerConfig {
  /** Tokens per chunk (default 256). Must be a multiple of every registered layout's block size. */
  readonly chunkSize?: number;
  readonly l1: L1Config;
  /** Sessions idle this long are ended (default 600 000 ms). */
  readonly sessionTtlMs?: number;
  /** Period of the lock-TTL / session-TTL sweep (default 1000 ms). */
  readonly sweepIntervalMs?: number;
  /** The hashing pool (piscina). */
  readonly pool?: HashPoolOptions;
  /** The GPU worker: started here (`backend`, default cpu), or an existing one (`worker`, not closed by the server). */
  readonly gpu?: { readonly backend?: 'cpu' | 'cuda'; readonly device?: number } | { readonly worker: GpuWorkerLike };
  /** Event pipeline and subscribers; `false` (default) publishes nothing. */
  readonly tracing?: TracingConfig | false;
}

/** Which engine worker a KV cache registration belongs to. */
export interface EngineIdentity {
  /** Unique per engine worker (rank). Re-registering an id replaces it. */
  readonly instanceId: string;
  readonly modelName: string;
  /** KV world size (default 1). With MLA the engine passes its divided world size. */
  readonly worldSize?: number;
  /** Rank whose keys this instance stores and retrieves (default 0). */
  readonly rank?: number;
  /** `workerId` on this instance's events (default: rank). */
  readonly workerId?: number;
  readonly engineId?: string;
}

export interface RegisterKvCacheRequest extends EngineIdentity {
  readonly layout: KvLayoutSpec;
  readonly memory: KvMemory;
}

export interface FreeLookupLocksRequest {
  readonly requestId: string;
  /** Chunk-aligned token range whose locks are released; default all. */
  readonly start?: number;
  readonly end?: number;
}

export interface InstanceStatus {
  readonly instanceId: string;
  readonly modelName: string;
  readonly worldSize: number;
  readonly rank: number;
  readonly engineId: string;
  readonly layout: KvLayoutSpec;
  readonly chunkBytes: number;
}

export interface ServerStatus {
  readonly backend: 'cpu' | 'cuda';
  readonly device: string;
  readonly chunkSize: number;
  readonly activeSessions: number;
  /** Sessions holding unconsumed lookup locks. */
  readonly sessionsWithLocks: number;
  readonly inflightCopies: number;
  readonly instances: readonly InstanceStatus[];
  readonly l1: L1Stats;
  readonly pool: ReturnType<HashPool['stats']>;
  readonly counters: Readonly<ServerCounters> & { readonly messages: number };
  readonly events: PipelineStats | undefined;
}

/**
 * The kvmp cache server, in process. Thread layout: this (the caller's) thread runs the
 * session actors and owns L1; a piscina pool hashes long prompts; the GPU worker thread copies
 * KV; the drain thread turns events into spans and metrics. See docs/design/actors.md.
 */
export class CacheServer {
  readonly chunkSize: number;
  /** The event pipeline, when tracing is on. */
  readonly pipeline: EventPipeline | undefined;
  private readonly ctx: ServerContext;
  private readonly ownsGpu: boolean;
  private readonly sessionTtlMs: number;
  private readonly timer: NodeJS.Timeout;
  private closing: Promise<void> | undefined;

  /** Use {@link createCacheServer}. */
  constructor(
    ctx: ServerContext,
    options: { pipeline: EventPipeline | undefined; ownsGpu: boolean; sessionTtlMs: number; sweepIntervalMs: number },
  ) {
    this.ctx = ctx;
    this.chunkSize = ctx.chunkTokens;
    this.pipeline = options.pipeline;
    this.ownsGpu = options.ownsGpu;
    this.sessionTtlMs = options.sessionTtlMs;
    this.timer = setInterval(() => this.sweep(), options.sweepIntervalMs);
    this.timer.unref();
  }

  /** This thread's event publisher (a disabled one when tracing is off). */
  get publisher(): EventPublisher {
    return this.ctx.publisher;
  }

  get backend(): 'cpu' | 'cuda' {
    return this.ctx.gpu.backend;
  }

  // --- registration -----------------------------------------------------------------------

  async registerKvCache(req: RegisterKvCacheRequest): Promise<void> {
    this.checkOpen();
    if (typeof req !== 'object' || req === null) throw invalid('registerKvCache: request must be an object');
    const instanceId = checkInstanceId(req.instanceId);
    const modelName = checkModelName(req.modelName);
    const worldSize = checkCount(req.worldSize, 'worldSize', 1, 255, 1);
    const rank = checkCount(req.rank, 'rank', 0, worldSize - 1, 0);
    const workerId = checkCount(req.workerId, 'workerId', 0, 65535, rank);
    const engineId = req.engineId === undefined ? instanceId : String(req.engineId);
    const layout = checkLayout(req.layout, this.chunkSize);
    const bytes = chunkBytes(layout, this.chunkSize);
    const slotBytes = slotBytesFor(bytes);
    if (!this.ctx.l1.pool.fits(slotBytes)) {
      throw new KvmpServerError(
        'BAD_LAYOUT',
        `a chunk (${bytes} bytes) does not fit an L1 segment (${this.ctx.l1.pool.segmentBytes} bytes)`,
      );
    }
    const memory = req.memory;
    if (typeof memory !== 'object' || memory === null || memory.backend !== this.ctx.gpu.backend) {
      throw new KvmpServerError('BAD_LAYOUT', `memory.backend must be ${this.ctx.gpu.backend}`);
    }
    if (memory.backend === 'cpu') {
      if (!Array.isArray(memory.layers) || memory.layers.length !== layout.numLayers) {
        throw new KvmpServerError('BAD_LAYOUT', `memory.layers must hold ${layout.numLayers} SharedArrayBuffers`);
      }
      const need = layerBytes(layout);
      for (const sab of memory.layers) {
        if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < need) {
          throw new KvmpServerError('BAD_LAYOUT', `each layer must be a SharedArrayBuffer of at least ${need} bytes`);
        }
      }
    }
    if (this.ctx.instances.has(instanceId)) await this.unregisterKvCache(instanceId);
    await this.ctx.gpu.registerKvCache(instanceId, layout, memory);
    const info: InstanceInfo = {
      instanceId,
      modelName,
      worldSize,
      rank,
      workerId,
      engineId,
      layout,
      chunkBytes: bytes,
      slotBytes,
      blocksPerChunk: this.chunkSize / layout.blockSize,
      lastSeen: this.ctx.now(),
    };
    this.ctx.instances.set(instanceId, info);
  }

  async unregisterKvCache(instanceId: string): Promise<void> {
    this.checkOpen();
    const id = checkInstanceId(instanceId);
    if (!this.ctx.instances.delete(id)) return;
    await this.ctx.gpu.unregisterKvCache(id);
  }

  // --- MP operations ----------------------------------------------------------------------

  /**
   * How much of the prompt's prefix is cached; read-locks that prefix for the retrieves to come.
   * Resolves once the lookup ran; the answer comes from {@link queryPrefetchStatus}.
   */
  async lookup(req: LookupRequest): Promise<void> {
    this.checkOpen();
    const trace = captureCaller();
    const checked = checkLookup(req);
    await this.ctx.sessions.send(checked.requestId, (s) => lookupInSession(this.ctx, s, checked, trace));
  }

  /**
   * Hit chunks of the session's last lookup (`null` would mean "still loading"; with L1 only,
   * the answer is always ready). The first call publishes `MP_LOOKUP_PREFETCH_END`. Unknown: 0.
   */
  async queryPrefetchStatus(requestId: string): Promise<number | null> {
    this.checkOpen();
    const id = checkRequestId(requestId);
    if (this.ctx.sessions.get(id) === undefined) return 0;
    return this.ctx.sessions.send(id, (s) => queryInSession(this.ctx, s));
  }

  /** Copies the locked prefix chunks into the engine's blocks; resolves when the copy completed. */
  async retrieve(req: RetrieveRequest): Promise<RetrieveResult> {
    this.checkOpen();
    const trace = captureCaller();
    const checked = checkTransfer(this.ctx, req, 'retrieve');
    const submitted = await this.ctx.sessions.send(checked.requestId, (s) =>
      submitRetrieve(this.ctx, s, checked, trace),
    );
    return submitted.done;
  }

  /** Copies newly computed chunks into L1; resolves when the copy completed. */
  async store(req: StoreRequest): Promise<StoreResult> {
    this.checkOpen();
    const trace = captureCaller();
    const checked = checkTransfer(this.ctx, req, 'store');
    const submitted = await this.ctx.sessions.send(checked.requestId, (s) => submitStore(this.ctx, s, checked, trace));
    return submitted.done;
  }

  /**
   * Like {@link store}, but resolves as soon as the copy is enqueued (the anchor's RPC
   * semantics); `done` resolves when the copy completed.
   */
  async submitStore(req: StoreRequest): Promise<{ readonly done: Promise<StoreResult> }> {
    this.checkOpen();
    const trace = captureCaller();
    const checked = checkTransfer(this.ctx, req, 'store');
    return this.ctx.sessions.send(checked.requestId, (s) => submitStore(this.ctx, s, checked, trace));
  }

  /** Like {@link retrieve}, but resolves as soon as the copy is enqueued. */
  async submitRetrieve(req: RetrieveRequest): Promise<{ readonly done: Promise<RetrieveResult> }> {
    this.checkOpen();
    const trace = captureCaller();
    const checked = checkTransfer(this.ctx, req, 'retrieve');
    return this.ctx.sessions.send(checked.requestId, (s) => submitRetrieve(this.ctx, s, checked, trace));
  }

  /** Releases lookup locks no retrieve will consume (the engine already had those chunks, or gave up). */
  async freeLookupLocks(req: FreeLookupLocksRequest): Promise<number> {
    this.checkOpen();
    if (typeof req !== 'object' || req === null) throw invalid('freeLookupLocks: request must be an object');
    const id = checkRequestId(req.requestId);
    const from = checkCount(req.start, 'start', 0, Number.MAX_SAFE_INTEGER, 0);
    const to =
      req.end === undefined ? Number.POSITIVE_INFINITY : checkCount(req.end, 'end', 0, Number.MAX_SAFE_INTEGER);
    if (from % this.chunkSize !== 0) throw new KvmpServerError('BAD_RANGE', 'start must be chunk-aligned');
    if (this.ctx.sessions.get(id) === undefined) return 0;
    return this.ctx.sessions.send(id, (s) =>
      releaseHeldLocks(this.ctx, s, from / this.chunkSize, Math.ceil(to / this.chunkSize)),
    );
  }

  /** Ends the request: publishes `MP_REQUEST_END` after removing the session. */
  async endSession(requestId: string): Promise<void> {
    this.checkOpen();
    const id = checkRequestId(requestId);
    if (this.ctx.sessions.get(id) === undefined) {
      this.ctx.publisher.publish('MP_REQUEST_END', id, {});
      return;
    }
    await this.ctx.sessions.send(id, (s, actor) => endInSession(this.ctx, s, actor));
  }

  /** Liveness: true for no id or a registered instance (its last-seen time is refreshed). */
  ping(instanceId?: string): boolean {
    if (this.closing) return false;
    if (instanceId === undefined) return true;
    const inst = this.ctx.instances.get(instanceId);
    if (inst === undefined) return false;
    inst.lastSeen = this.ctx.now();
    return true;
  }

  /** Drops every L1 object that is not locked or being copied. */
  async clear(): Promise<{ readonly cleared: number; readonly kept: number }> {
    this.checkOpen();
    return this.ctx.l1.clear();
  }

  getChunkSize(): number {
    return this.chunkSize;
  }

  status(): ServerStatus {
    let withLocks = 0;
    for (const id of this.ctx.sessions.ids()) if ((this.ctx.sessions.get(id)?.state.locks.size ?? 0) > 0) withLocks++;
    return {
      backend: this.ctx.gpu.backend,
      device: this.ctx.device,
      chunkSize: this.chunkSize,
      activeSessions: this.ctx.sessions.size,
      sessionsWithLocks: withLocks,
      inflightCopies: this.ctx.inflight.size,
      instances: [...this.ctx.instances.values()].map((i) => ({
        instanceId: i.instanceId,
        modelName: i.modelName,
        worldSize: i.worldSize,
        rank: i.rank,
        engineId: i.engineId,
        layout: i.layout,
        chunkBytes: i.chunkBytes,
      })),
      l1: this.ctx.l1.stats(),
      pool: this.ctx.pool.stats(),
      counters: { ...this.ctx.counters, messages: this.ctx.sessions.messagesHandled },
      events: this.pipeline?.stats(),
    };
  }

  /** Runs the TTL sweep now (it also runs every `sweepIntervalMs`). */
  sweep(): void {
    this.ctx.l1.sweep();
    expireIdleSessions(this.ctx, this.sessionTtlMs);
  }

  /**
   * Waits for copies in flight, then stops the GPU worker (if the server started it), the pool,
   * and the event pipeline (which drains and flushes every exporter). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    const deadline = Date.now() + 10_000;
    while (this.ctx.inflight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.ctx.inflight]), sleep(100)]);
    }
    // End the sessions still open (their locks go back, their root spans close normally).
    const open = [...this.ctx.sessions.ids()];
    await Promise.race([
      Promise.allSettled(open.map((id) => this.ctx.sessions.send(id, (s, actor) => endInSession(this.ctx, s, actor)))),
      sleep(5_000),
    ]);
    if (this.ownsGpu) await this.ctx.gpu.close();
    await this.ctx.pool.close();
    await this.pipeline?.stop();
  }

  private checkOpen(): void {
    if (this.closing) throw new KvmpServerError('CLOSED', 'the cache server is closed');
  }
}

/** A bound on a wait; unref'd so a bound that lost its race does not keep the process alive. */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/**
 * Starts the hashing pool, the GPU worker and (with tracing) the drain thread, and returns the
 * server. Calls made inside an active OTel span make that span the parent of the request's
 * root span.
 */
export async function createCacheServer(config: CacheServerConfig): Promise<CacheServer> {
  if (typeof config !== 'object' || config === null) throw invalid('createCacheServer: config must be an object');
  const chunkTokens = checkCount(config.chunkSize, 'chunkSize', 1, 1 << 20, 256);
  if (typeof config.l1 !== 'object' || config.l1 === null) throw invalid('config.l1 is required');
  checkCount(config.l1.capacityBytes, 'l1.capacityBytes', 1, Number.MAX_SAFE_INTEGER);
  const sessionTtlMs = checkCount(config.sessionTtlMs, 'sessionTtlMs', 1, Number.MAX_SAFE_INTEGER, 600_000);
  const sweepIntervalMs = checkCount(config.sweepIntervalMs, 'sweepIntervalMs', 1, 3_600_000, 1000);

  let pipeline: EventPipeline | undefined;
  if (config.tracing) {
    pipeline =
      config.tracing.pipeline ??
      new EventPipeline({
        subscribers: config.tracing.subscribers ?? [],
        ...(config.tracing.capacity ? { capacity: config.tracing.capacity } : {}),
        ...(config.tracing.logger ? { logger: config.tracing.logger } : {}),
        ...(config.tracing.napMs === undefined ? {} : { napMs: config.tracing.napMs }),
        ...(config.tracing.maxNapMs === undefined ? {} : { maxNapMs: config.tracing.maxNapMs }),
      });
    await pipeline.start();
  }
  const publisher = pipeline ? pipeline.publisher : DISABLED_PUBLISHER;
  const now = () => performance.now();
  const l1 = new L1Store({ ...config.l1, now }, publisher);
  const hasher = await ChunkHasher.create();
  const pool = new HashPool(hasher, config.pool);

  const gpuCfg = config.gpu ?? {};
  let gpu: GpuWorkerLike | undefined;
  let ownsGpu = false;
  let device: string;
  let segmentBase = 0;
  try {
    if ('worker' in gpuCfg) {
      gpu = gpuCfg.worker;
      ownsGpu = false;
      device = gpu.backend === 'cuda' ? 'cuda:0' : 'cpu';
    } else {
      const backend = gpuCfg.backend ?? 'cpu';
      gpu = await startGpuWorker({
        backend,
        ...(gpuCfg.device === undefined ? {} : { device: gpuCfg.device }),
        deviceLabel: backend === 'cuda' ? `cuda:${gpuCfg.device ?? 0}` : 'cpu',
        ...(pipeline ? { ring: pipeline.handle } : {}),
      });
      ownsGpu = true;
      device = backend === 'cuda' ? `cuda:${gpuCfg.device ?? 0}` : 'cpu';
    }
    const first = await gpu.registerHostMemory(l1.pool.segments);
    segmentBase = typeof first === 'number' ? first : 0;
  } catch (err) {
    if (ownsGpu) await gpu?.close().catch(() => {});
    await pool.close();
    await pipeline?.stop();
    throw err;
  }

  const ctx: ServerContext = {
    chunkTokens,
    l1,
    hasher,
    pool,
    publisher,
    gpu,
    device,
    segmentBase,
    instances: new Map(),
    sessions: new ActorRegistry((id) => createSessionState(id, chunkTokens), now),
    counters: { lookups: 0, retrieves: 0, stores: 0, retrieveFailures: 0, storeFailures: 0, sessionsExpired: 0 },
    inflight: new Set(),
    now,
  };
  return new CacheServer(ctx, { pipeline, ownsGpu, sessionTtlMs, sweepIntervalMs });
}
