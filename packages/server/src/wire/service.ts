import { randomInt } from 'node:crypto';
import type { CacheServer, EngineIdentity } from '../create-cache-server.js';
import { checkLayout } from '../engine/layout.js';
import { KvmpServerError } from '../errors.js';
import type { KvLayoutSpec } from '../gpu/contract.js';
import { checkCacheSalt } from '../keys/object-key.js';
import type { RetrieveResult, StoreResult } from '../ops/transfer.js';
import { checkRange } from '../ops/validate.js';
import { encodeMapWithBin, PreEncoded } from './codec.js';
import type { Payload } from './fields.js';
import {
  type LookupMsg,
  parseCommitStore,
  parseFreeLocks,
  parseHello,
  parseInstanceId,
  parseLookup,
  parsePing,
  parseRange,
  parseRegisterEngineDriven,
  parseRegisterKvCache,
  parseRequestId,
  parseTransfer,
  type RangeMsg,
} from './messages.js';
import { PROTOCOL_VERSION, type RequestTypeName, type WireErrorCode } from './protocol.js';
import { Staging } from './staging.js';
import { withCarrier } from './trace-context.js';
import { WireError } from './wire-error.js';
import type { WireLogger } from './zmq-server.js';

export interface WireServiceOptions {
  /** Per-message limit in bytes (all frames of one request or reply). */
  readonly maxMessageBytes: number;
  /** Chunks each engine-driven instance can stage at once; default 2 messages' worth (4..1024). */
  readonly stagingChunks?: number;
  /** How long PREPARE_STORE waits for staging space before answering BUSY (default 5000 ms). */
  readonly stagingWaitMs?: number;
  /** A prepared store not committed within this is cancelled and its staging freed (default 60 000 ms). */
  readonly prepareTtlMs?: number;
  /** Sessions idle this long are forgotten by the wire layer (default: as the core, 600 000 ms). */
  readonly sessionTtlMs?: number;
  /** Server name and version for HELLO. */
  readonly serverName?: string;
  /** Lifecycle at debug, expiries at warn; never payloads. */
  readonly logger?: WireLogger;
}

/** Room left in a COMMIT_STORE message for everything but KV bytes (the handle, keys, id frames). */
const ENVELOPE_BYTES = 1024;

interface EngineDrivenInstance {
  readonly instanceId: string;
  readonly modelName: string;
  /** The layout the engine declared (its own num_blocks, if it sent one). */
  readonly declared: KvLayoutSpec;
  readonly staging: Staging;
  readonly maxChunksPerMessage: number;
}

interface PreparedStore {
  readonly inst: EngineDrivenInstance;
  readonly msg: RangeMsg;
  readonly start: number;
  readonly end: number;
  readonly slots: number[];
  readonly timer: NodeJS.Timeout;
}

export interface WireStats {
  readonly requests: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, number>>;
  readonly trackedSessions: number;
  readonly preparedStores: number;
  readonly engineDriven: readonly {
    readonly instanceId: string;
    readonly modelName: string;
    readonly declaredLayout: KvLayoutSpec;
    readonly chunkBytes: number;
    readonly maxChunksPerMessage: number;
    readonly stagingChunks: number;
    readonly stagingFree: number;
  }[];
}

/**
 * The request handlers: decode-independent, transport-independent. Each takes a decoded payload
 * map and calls the cache server core; the ZMQ server turns results and errors into replies.
 * State kept here is only what the wire adds: engine-driven staging, prepared stores, and the
 * set of sessions seen (to answer UNKNOWN_SESSION).
 */
export class WireService {
  readonly core: CacheServer;
  readonly maxMessageBytes: number;
  private readonly options: WireServiceOptions;
  private readonly engineDriven = new Map<string, EngineDrivenInstance>();
  private readonly prepared = new Map<number, PreparedStore>();
  private readonly sessions = new Map<string, number>();
  private readonly requestCounts: Record<string, number> = {};
  private readonly errorCounts: Record<string, number> = {};
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(core: CacheServer, options: WireServiceOptions) {
    this.core = core;
    this.options = options;
    this.maxMessageBytes = options.maxMessageBytes;
    this.sweepTimer = setInterval(() => this.sweepSessions(), 1000);
    this.sweepTimer.unref();
  }

  countError(code: WireErrorCode): void {
    this.errorCounts[code] = (this.errorCounts[code] ?? 0) + 1;
  }

  /** Runs one request. Throws `WireError` / `KvmpServerError` for error replies. */
  handle(type: RequestTypeName, p: Payload): unknown {
    this.requestCounts[type] = (this.requestCounts[type] ?? 0) + 1;
    switch (type) {
      case 'HELLO':
        return this.hello(p);
      case 'REGISTER_KV_CACHE':
        return this.registerCuda(p);
      case 'REGISTER_ENGINE_DRIVEN':
        return this.registerEngineDriven(p);
      case 'UNREGISTER_KV_CACHE':
        return this.unregister(parseInstanceId(p));
      case 'LOOKUP':
        return this.lookup(parseLookup(p));
      case 'QUERY_PREFETCH_STATUS':
        return this.query(parseRequestId(p).requestId);
      case 'FREE_LOOKUP_LOCKS':
        return this.freeLocks(p);
      case 'END_SESSION':
        return this.endSession(p);
      case 'STORE':
      case 'RETRIEVE':
        return this.transfer(type, p);
      case 'PREPARE_STORE':
        return this.prepareStore(parseRange(p));
      case 'COMMIT_STORE':
        return this.commitStore(p);
      case 'RETRIEVE_DATA':
        return this.retrieveData(parseRange(p));
      case 'CLEAR':
        return this.core.clear();
      case 'GET_CHUNK_SIZE':
        return this.core.getChunkSize();
      case 'PING':
        return this.core.ping(parsePing(p));
      case 'NOOP':
        return 'OK';
    }
  }

  private hello(p: Payload): unknown {
    const msg = parseHello(p);
    if (msg.protocolVersion !== PROTOCOL_VERSION) {
      throw new WireError(
        'VERSION_MISMATCH',
        `client speaks kvmp protocol ${msg.protocolVersion}, this server speaks ${PROTOCOL_VERSION}: upgrade the older side`,
      );
    }
    return {
      protocol_version: PROTOCOL_VERSION,
      server: this.options.serverName ?? 'kvmp',
      chunk_size: this.core.chunkSize,
      max_message_bytes: this.maxMessageBytes,
      backend: this.core.backend,
      transfer_modes: this.core.backend === 'cuda' ? ['cuda_ipc'] : ['engine_driven'],
    };
  }

  private async registerCuda(p: Payload): Promise<null> {
    const msg = parseRegisterKvCache(p);
    if (this.core.backend !== 'cuda') {
      throw new WireError(
        'UNSUPPORTED',
        'this server runs with --device cpu and cannot map CUDA IPC handles; use REGISTER_ENGINE_DRIVEN (KV bytes in messages)',
      );
    }
    await this.dropEngineDriven(msg.instanceId);
    await this.core.registerKvCache({
      ...registration(msg),
      layout: msg.layout,
      memory: {
        backend: 'cuda',
        layers: msg.layers.map((l) => ({ ipcHandle: l.ipcHandle, offset: l.offset })),
        deviceUuid: msg.deviceUuid,
      },
    });
    return null;
  }

  private async registerEngineDriven(p: Payload): Promise<unknown> {
    const msg = parseRegisterEngineDriven(p);
    if (this.core.backend !== 'cpu') {
      throw new WireError(
        'UNSUPPORTED',
        'engine-driven mode stages KV in host memory and needs a server started with --device cpu',
      );
    }
    const chunkTokens = this.core.chunkSize;
    // Same check as the core's registration, made before staging memory is sized from it.
    checkLayout(msg.layout, chunkTokens);
    const probe = new Staging(msg.layout, chunkTokens, 0);
    const maxChunksPerMessage = Math.floor((this.maxMessageBytes - ENVELOPE_BYTES) / probe.chunkBytes);
    if (maxChunksPerMessage < 1) {
      throw new KvmpServerError(
        'BAD_LAYOUT',
        `one chunk (${probe.chunkBytes} bytes) does not fit in a message (limit ${this.maxMessageBytes} bytes); raise --max-message-mb`,
      );
    }
    const slots = this.options.stagingChunks ?? Math.min(1024, Math.max(4, 2 * maxChunksPerMessage));
    const staging = new Staging(msg.layout, chunkTokens, slots);
    // Copies still using the old staging finish first: the core must never copy a request's
    // chunks out of memory that a re-registration swapped under it.
    await this.dropEngineDriven(msg.instanceId);
    await this.core.registerKvCache({
      ...registration(msg),
      layout: staging.layout,
      memory: { backend: 'cpu', layers: staging.layers },
    });
    this.options.logger?.debug(
      { instanceId: msg.instanceId, chunkBytes: staging.chunkBytes, slots },
      'engine-driven instance registered',
    );
    this.engineDriven.set(msg.instanceId, {
      instanceId: msg.instanceId,
      modelName: msg.modelName,
      declared: msg.layout,
      staging,
      maxChunksPerMessage: Math.min(maxChunksPerMessage, slots),
    });
    return {
      chunk_size: chunkTokens,
      chunk_bytes: staging.chunkBytes,
      max_chunks_per_message: Math.min(maxChunksPerMessage, slots),
      staging_chunks: slots,
    };
  }

  private async unregister(instanceId: string): Promise<null> {
    await this.dropEngineDriven(instanceId);
    await this.core.unregisterKvCache(instanceId);
    this.options.logger?.debug({ instanceId }, 'instance unregistered');
    return null;
  }

  /** Forgets an engine-driven instance: cancels its prepared stores, waits for its copies. */
  private async dropEngineDriven(instanceId: string): Promise<void> {
    const inst = this.engineDriven.get(instanceId);
    if (inst === undefined) return;
    this.engineDriven.delete(instanceId);
    for (const [handle, prep] of this.prepared) {
      if (prep.inst === inst) this.cancelPrepared(handle);
    }
    await inst.staging.close();
  }

  private touch(requestId: string): void {
    // Re-inserting keeps the map in last-seen order, so the sweep stops at the first fresh one.
    this.sessions.delete(requestId);
    this.sessions.set(requestId, Date.now());
  }

  private known(requestId: string): void {
    if (!this.sessions.has(requestId)) {
      throw new WireError('UNKNOWN_SESSION', 'no session with this request id (never looked up, ended or expired)');
    }
  }

  private sweepSessions(): void {
    const cutoff = Date.now() - (this.options.sessionTtlMs ?? 600_000);
    for (const [id, seen] of this.sessions) {
      if (seen >= cutoff) break;
      this.sessions.delete(id);
    }
  }

  private lookup(msg: LookupMsg): Promise<null> {
    this.touch(msg.requestId);
    return withCarrier(msg.trace, () =>
      this.core.lookup({
        requestId: msg.requestId,
        modelName: msg.modelName,
        tokens: msg.tokens,
        ...opt('end', msg.end),
        ...opt('worldSize', msg.worldSize),
        ...opt('workerId', msg.workerId),
        ...opt('tpSize', msg.tpSize),
        ...opt('cacheSalt', msg.cacheSalt),
      }),
    ).then(() => null);
  }

  private async query(requestId: string): Promise<unknown> {
    this.known(requestId);
    const hit = await this.core.queryPrefetchStatus(requestId);
    return { hit_chunks: hit, hit_tokens: hit === null ? null : hit * this.core.chunkSize };
  }

  private async freeLocks(p: Payload): Promise<unknown> {
    const msg = parseFreeLocks(p);
    this.known(msg.requestId);
    const released = await this.core.freeLookupLocks({
      requestId: msg.requestId,
      ...opt('start', msg.start),
      ...opt('end', msg.end),
    });
    return { released };
  }

  private async endSession(p: Payload): Promise<unknown> {
    const msg = parseRequestId(p);
    const known = this.sessions.delete(msg.requestId);
    // Called even for an unknown id: the core publishes MP_REQUEST_END, which closes a root
    // span whose session expired here first.
    await withCarrier(msg.trace, () => this.core.endSession(msg.requestId));
    return { known };
  }

  private async transfer(type: 'STORE' | 'RETRIEVE', p: Payload): Promise<unknown> {
    const msg = parseTransfer(p);
    if (this.engineDriven.has(msg.instanceId)) {
      throw new WireError(
        'UNSUPPORTED',
        `instance is engine-driven: use PREPARE_STORE/COMMIT_STORE and RETRIEVE_DATA instead of ${type}`,
      );
    }
    if (type === 'RETRIEVE') this.known(msg.requestId);
    this.touch(msg.requestId);
    const req = {
      requestId: msg.requestId,
      instanceId: msg.instanceId,
      tokens: msg.tokens,
      blockIds: msg.blockIds,
      ...opt('start', msg.start),
      ...opt('end', msg.end),
      ...opt('cacheSalt', msg.cacheSalt),
      ...opt('waitEvent', msg.waitEvent),
    };
    if (type === 'STORE') return storeReply(await withCarrier(msg.trace, () => this.core.store(req)));
    const r = await withCarrier(msg.trace, () =>
      this.core.retrieve({ ...req, ...opt('skipFirstTokens', msg.skipFirstTokens) }),
    );
    return retrieveReply(r, undefined);
  }

  /** Validates an engine-driven range up front, so no bytes travel for a request that would fail. */
  private checkEngineRange(
    msg: RangeMsg,
    what: string,
  ): { inst: EngineDrivenInstance; start: number; end: number; chunks: number } {
    const inst = this.engineDriven.get(msg.instanceId);
    if (inst === undefined) {
      const registered = this.core.status().instances.some((i) => i.instanceId === msg.instanceId);
      throw registered
        ? new WireError('UNSUPPORTED', `${what}: the instance registered CUDA IPC memory; use STORE/RETRIEVE`)
        : new KvmpServerError('UNKNOWN_INSTANCE', `${what}: no KV cache registered under this instance id`);
    }
    checkCacheSalt(msg.cacheSalt);
    const range = checkRange(msg.start, msg.end, msg.tokens.length, this.core.chunkSize);
    if (range.chunks > inst.maxChunksPerMessage) {
      throw new WireError(
        'FRAME_TOO_LARGE',
        `${what}: ${range.chunks} chunks of ${inst.staging.chunkBytes} bytes exceed one message; send at most ${inst.maxChunksPerMessage} chunks per request`,
      );
    }
    return { inst, start: range.start, end: range.end, chunks: range.chunks };
  }

  private async prepareStore(msg: RangeMsg): Promise<unknown> {
    const { inst, start, end, chunks } = this.checkEngineRange(msg, 'PREPARE_STORE');
    this.touch(msg.requestId);
    const slots = await inst.staging.acquire(chunks, this.options.stagingWaitMs ?? 5000);
    if (this.engineDriven.get(msg.instanceId) !== inst) {
      inst.staging.release(slots);
      throw new KvmpServerError('UNKNOWN_INSTANCE', 'PREPARE_STORE: the instance was unregistered');
    }
    // Unguessable, so one client cannot commit bytes into another's prepared store.
    let handle = randomInt(1, 2 ** 48);
    while (this.prepared.has(handle)) handle = randomInt(1, 2 ** 48);
    const timer = setTimeout(() => {
      if (this.cancelPrepared(handle)) this.options.logger?.warn({ chunks }, 'prepared store expired without a commit');
    }, this.options.prepareTtlMs ?? 60_000);
    timer.unref();
    this.prepared.set(handle, { inst, msg, start, end, slots, timer });
    return { handle, chunks, chunk_bytes: inst.staging.chunkBytes, start, end };
  }

  private cancelPrepared(handle: number): PreparedStore | undefined {
    const prep = this.prepared.get(handle);
    if (prep === undefined) return undefined;
    this.prepared.delete(handle);
    clearTimeout(prep.timer);
    prep.inst.staging.release(prep.slots);
    return prep;
  }

  private async commitStore(p: Payload): Promise<unknown> {
    const { handle, data } = parseCommitStore(p);
    const prep = this.prepared.get(handle);
    if (prep === undefined) {
      throw new WireError(
        'UNKNOWN_HANDLE',
        'COMMIT_STORE: unknown handle (never prepared, already committed, or expired)',
      );
    }
    const want = prep.slots.length * prep.inst.staging.chunkBytes;
    if (data.length !== want) {
      throw new WireError('BAD_FIELD', `data must be ${want} bytes (${prep.slots.length} chunks), got ${data.length}`);
    }
    this.prepared.delete(handle);
    clearTimeout(prep.timer);
    const { inst, msg, slots } = prep;
    try {
      inst.staging.write(slots, data);
      const r = await withCarrier(msg.trace, () =>
        this.core.store({
          requestId: msg.requestId,
          instanceId: msg.instanceId,
          tokens: msg.tokens,
          start: prep.start,
          end: prep.end,
          blockIds: inst.staging.blockIds(slots),
          ...opt('cacheSalt', msg.cacheSalt),
        }),
      );
      // No done_event: the copy is complete and there is no GPU event for an engine-driven peer.
      return storeReply({ ...r, doneEvent: undefined });
    } finally {
      inst.staging.release(slots);
    }
  }

  private async retrieveData(msg: RangeMsg): Promise<unknown> {
    const { inst, start, end, chunks } = this.checkEngineRange(msg, 'RETRIEVE_DATA');
    // A retrieve consumes its session's lookup locks: without a session it cannot succeed.
    this.known(msg.requestId);
    this.touch(msg.requestId);
    const slots = await inst.staging.acquire(chunks, this.options.stagingWaitMs ?? 5000);
    try {
      const r = await withCarrier(msg.trace, () =>
        this.core.retrieve({
          requestId: msg.requestId,
          instanceId: msg.instanceId,
          tokens: msg.tokens,
          start,
          end,
          blockIds: inst.staging.blockIds(slots),
          ...opt('cacheSalt', msg.cacheSalt),
        }),
      );
      const got = r.ok ? slots.slice(0, r.retrievedChunks) : [];
      // The reply is assembled around the KV bytes, which are copied once: staging → message.
      return new PreEncoded(
        encodeMapWithBin(
          retrieveReply({ ...r, doneEvent: undefined }, undefined) as Record<string, unknown>,
          'data',
          got.length * inst.staging.chunkBytes,
          (dst) => inst.staging.readInto(got, dst),
        ),
      );
    } finally {
      inst.staging.release(slots);
    }
  }

  stats(): WireStats {
    return {
      requests: { ...this.requestCounts },
      errors: { ...this.errorCounts },
      trackedSessions: this.sessions.size,
      preparedStores: this.prepared.size,
      engineDriven: [...this.engineDriven.values()].map((i) => ({
        instanceId: i.instanceId,
        modelName: i.modelName,
        declaredLayout: i.declared,
        chunkBytes: i.staging.chunkBytes,
        maxChunksPerMessage: i.maxChunksPerMessage,
        stagingChunks: i.staging.slots,
        stagingFree: i.staging.freeSlots,
      })),
    };
  }

  /** Cancels prepared stores and frees staging (after the transport stopped). */
  close(): void {
    clearInterval(this.sweepTimer);
    for (const handle of [...this.prepared.keys()]) this.cancelPrepared(handle);
    for (const id of [...this.engineDriven.keys()]) {
      const inst = this.engineDriven.get(id);
      this.engineDriven.delete(id);
      void inst?.staging.close();
    }
    this.sessions.clear();
  }
}

/** The engine identity both registration kinds pass to the core. */
function registration(msg: EngineIdentity): EngineIdentity {
  return {
    instanceId: msg.instanceId,
    modelName: msg.modelName,
    ...opt('worldSize', msg.worldSize),
    ...opt('rank', msg.rank),
    ...opt('workerId', msg.workerId),
    ...opt('engineId', msg.engineId),
  };
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function storeReply(r: StoreResult): unknown {
  return {
    ok: r.ok,
    requested_chunks: r.requestedChunks,
    stored_chunks: r.storedChunks,
    deduped_chunks: r.dedupedChunks,
    failed_chunks: r.failedChunks,
    bytes: r.bytes,
    ...(r.error === undefined ? {} : { error: r.error }),
    ...(r.doneEvent === undefined ? {} : { done_event: r.doneEvent }),
  };
}

function retrieveReply(r: RetrieveResult, data: Uint8Array | undefined): unknown {
  return {
    ok: r.ok,
    retrieved_chunks: r.retrievedChunks,
    tokens: r.tokens,
    bytes: r.bytes,
    ...(r.error === undefined ? {} : { error: r.error }),
    ...(r.doneEvent === undefined ? {} : { done_event: r.doneEvent }),
    ...(data === undefined ? {} : { data }),
  };
}
