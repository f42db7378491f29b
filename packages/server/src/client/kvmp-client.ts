import { randomBytes } from 'node:crypto';
import { captureTraceCarrier, type TraceCarrier } from '@kvmp/tracing';
import { Dealer } from 'zeromq';
import { createDecoder, encode, encodeMapWithBin } from '../wire/codec.js';
import { PROTOCOL_VERSION, RequestType, type RequestTypeName, type WireErrorCode } from '../wire/protocol.js';
import { KvmpClientError } from './client-error.js';
import type {
  CallOptions,
  EngineDrivenInfo,
  HelloInfo,
  LookupArgs,
  PrepareStoreReply,
  QueryReply,
  RangeArgs,
  RegisterCudaRequest,
  RegisterEngineDrivenRequest,
  RetrieveReply,
  StoreReply,
  TransferArgs,
  WireLayout,
} from './types.js';

export type ClientState = 'connected' | 'unhealthy' | 'reconnected' | 'closed';

export interface KvmpClientOptions {
  /** `tcp://127.0.0.1:5555` or `ipc:///path`. */
  readonly endpoint: string;
  /** Default per-call timeout (default 30 000 ms). */
  readonly timeoutMs?: number;
  /** PING every this often (default 5000 ms; 0 disables the heartbeat). */
  readonly heartbeatIntervalMs?: number;
  /** Missed heartbeats before the connection is replaced (default 3). */
  readonly heartbeatMisses?: number;
  /** Sent in HELLO (diagnostics). */
  readonly clientName?: string;
  /**
   * Called after the client re-established the session with a server that lost its state
   * (restarted, or reaped this client's instance): re-register KV caches here. Registrations
   * made through this client are replayed automatically before it runs.
   */
  readonly onRecover?: () => void | Promise<void>;
  readonly onStateChange?: (state: ClientState) => void;
}

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly type: RequestTypeName;
}

const isLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Token ids as bin of little-endian u32 (cheapest to encode and decode). */
function tokenBin(tokens: readonly number[] | Uint32Array): Uint8Array {
  const arr = tokens instanceof Uint32Array ? tokens : Uint32Array.from(tokens);
  if (!isLE) throw new Error('big-endian hosts are not supported');
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

function layoutMap(l: WireLayout): Record<string, unknown> {
  return {
    kind: l.kind,
    num_layers: l.numLayers,
    num_blocks: l.numBlocks,
    block_size: l.blockSize,
    num_heads: l.numHeads,
    head_size: l.headSize,
    head_dim: l.headDim,
    dtype: l.dtype,
  };
}

type Reply = Readonly<Record<string, unknown>>;

/**
 * The typed kvmp client: one ZeroMQ DEALER, requests pipelined and matched to replies by id,
 * a timeout per call, and a heartbeat that replaces the connection after missed PINGs and
 * replays this client's registrations when the server lost them. Usable from a gateway (LOOKUP,
 * QUERY_PREFETCH_STATUS, END_SESSION) or an engine worker (everything).
 */
export class KvmpClient {
  readonly endpoint: string;
  private readonly options: KvmpClientOptions;
  private sock: Dealer;
  private readonly decoder = createDecoder({ maxBytes: 1 << 30 });
  private readonly pending = new Map<number, Pending>();
  private readonly queue: Uint8Array[][] = [];
  private pumping: Promise<void> | undefined;
  private nextId = 1;
  private closed = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private misses = 0;
  private recovering = false;
  private serverInfo: HelloInfo | undefined;
  /** Registrations to replay after a recovery, by instance id. */
  private readonly registrations = new Map<string, { type: RequestTypeName; payload: Record<string, unknown> }>();
  private readonly engineDriven = new Map<string, EngineDrivenInfo>();

  private constructor(options: KvmpClientOptions) {
    this.options = options;
    this.endpoint = options.endpoint;
    this.sock = this.openSocket();
  }

  /** Connects and performs the HELLO handshake (fails with VERSION_MISMATCH on a protocol mismatch). */
  static async connect(options: KvmpClientOptions): Promise<KvmpClient> {
    const client = new KvmpClient(options);
    try {
      await client.hello();
    } catch (err) {
      client.close();
      throw err;
    }
    client.startHeartbeat();
    return client;
  }

  /** What the server said in HELLO. */
  get server(): HelloInfo {
    if (this.serverInfo === undefined) throw new KvmpClientError('CLIENT_CLOSED', 'not connected');
    return this.serverInfo;
  }

  private openSocket(): Dealer {
    // A fixed routing id keeps the server's view of this client stable across TCP reconnects.
    const sock = new Dealer({ routingId: randomBytes(12).toString('hex'), linger: 0, sendHighWaterMark: 100_000 });
    sock.connect(this.endpoint);
    void this.receiveLoop(sock);
    return sock;
  }

  private async receiveLoop(sock: Dealer): Promise<void> {
    try {
      for await (const frames of sock) {
        if (frames.length !== 3) continue;
        let id: unknown;
        let body: unknown;
        try {
          id = this.decoder.decode(frames[0]);
          body = this.decoder.decode(frames[2]);
        } catch {
          continue;
        }
        if (typeof id !== 'number') continue;
        const p = this.pending.get(id);
        if (p === undefined) continue; // timed out earlier
        this.pending.delete(id);
        clearTimeout(p.timer);
        const reply = body as { ok?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
        if (reply?.ok === true) p.resolve(reply.result);
        else if (reply?.ok === false && typeof reply.error?.code === 'string') {
          p.reject(new KvmpClientError(reply.error.code as WireErrorCode, `${p.type}: ${String(reply.error.message)}`));
        } else p.reject(new KvmpClientError('BAD_REPLY', `${p.type}: malformed reply`));
      }
    } catch {
      // Socket closed.
    }
  }

  /** Sends one request and resolves with its result (rejects with a {@link KvmpClientError}). */
  request(type: RequestTypeName, payload: Record<string, unknown>, call: CallOptions = {}): Promise<unknown> {
    if (this.closed) return Promise.reject(new KvmpClientError('CLIENT_CLOSED', 'the client is closed'));
    const id = this.nextId++;
    const timeoutMs = call.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new KvmpClientError('TIMEOUT', `${type}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, type });
      // KV bytes (COMMIT_STORE) are copied once, straight into the message.
      const data = payload.data;
      const body =
        data instanceof Uint8Array
          ? encodeMapWithBin(payload, 'data', data.length, (dst) => dst.set(data))
          : encode(payload);
      this.queue.push([encode(id), encode(RequestType[type]), body]);
      this.pumping ??= this.pump();
    });
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closed) {
        const msg = this.queue[0];
        const sock = this.sock;
        try {
          await sock.send(msg);
          this.queue.shift();
        } catch {
          // The socket was replaced under us: resend on the new one (its request is pending).
          if (sock === this.sock) this.queue.shift();
        }
      }
    } finally {
      this.pumping = undefined;
    }
  }

  private startHeartbeat(): void {
    const interval = this.options.heartbeatIntervalMs ?? 5000;
    if (interval <= 0) return;
    this.heartbeat = setInterval(() => void this.beat(interval), interval);
    this.heartbeat.unref();
  }

  private async beat(interval: number): Promise<void> {
    if (this.recovering || this.closed) return;
    const instanceId = this.registrations.keys().next().value;
    try {
      const alive = await this.request('PING', instanceId === undefined ? {} : { instance_id: instanceId }, {
        timeoutMs: interval,
      });
      if (this.misses > 0) this.options.onStateChange?.('connected');
      this.misses = 0;
      // The server answers false for an instance it does not know: it restarted or reaped us.
      if (alive === false) await this.recover(false);
    } catch (err) {
      if (this.closed) return;
      this.misses++;
      if (this.misses === 1) this.options.onStateChange?.('unhealthy');
      if (this.misses >= (this.options.heartbeatMisses ?? 3) && err instanceof KvmpClientError)
        await this.recover(true);
    }
  }

  /** Replaces the socket (if asked), re-handshakes, replays registrations, then calls onRecover. */
  private async recover(newSocket: boolean): Promise<void> {
    if (this.recovering || this.closed) return;
    this.recovering = true;
    try {
      if (newSocket) {
        const old = this.sock;
        this.sock = this.openSocket();
        old.close();
        for (const [id, p] of this.pending) {
          this.pending.delete(id);
          clearTimeout(p.timer);
          p.reject(
            new KvmpClientError('CONNECTION_LOST', `${p.type}: the connection was replaced after missed heartbeats`),
          );
        }
        this.queue.length = 0;
      }
      for (let backoff = 50; ; backoff = Math.min(2000, backoff * 2)) {
        if (this.closed) return;
        try {
          await this.hello();
          break;
        } catch (err) {
          if (err instanceof KvmpClientError && err.code === 'VERSION_MISMATCH') throw err;
          // A server that answers fast (e.g. CLOSED while it shuts down) must not be hammered.
          await new Promise((r) => setTimeout(r, backoff));
        }
      }
      for (const { type, payload } of this.registrations.values()) await this.request(type, payload);
      this.misses = 0;
      this.options.onStateChange?.('reconnected');
      await this.options.onRecover?.();
    } catch {
      // Next heartbeat tries again.
    } finally {
      this.recovering = false;
    }
  }

  // --- typed operations ---------------------------------------------------------------------

  async hello(call?: CallOptions): Promise<HelloInfo> {
    const r = (await this.request(
      'HELLO',
      { protocol_version: PROTOCOL_VERSION, client: this.options.clientName ?? 'kvmp-ts' },
      call,
    )) as Reply;
    this.serverInfo = {
      protocolVersion: r.protocol_version as number,
      server: r.server as string,
      chunkSize: r.chunk_size as number,
      maxMessageBytes: r.max_message_bytes as number,
      backend: r.backend as 'cpu' | 'cuda',
      transferModes: r.transfer_modes as string[],
    };
    return this.serverInfo;
  }

  /** CUDA IPC mode: the server maps the engine's KV tensors (server started with --device cuda). */
  async registerKvCache(req: RegisterCudaRequest, call?: CallOptions): Promise<void> {
    const payload = {
      ...identity(req),
      layout: layoutMap(req.layout),
      device_uuid: req.deviceUuid,
      layers: req.layers.map((l) => ({
        ipc_handle: l.ipcHandle,
        offset: l.offset,
        shape: [...l.shape],
        stride: [...l.stride],
        dtype: l.dtype,
      })),
    };
    await this.request('REGISTER_KV_CACHE', payload, call);
    this.registrations.set(req.instanceId, { type: 'REGISTER_KV_CACHE', payload });
  }

  /** Engine-driven mode: KV bytes travel in messages (engines without a GPU the server can map). */
  async registerEngineDriven(req: RegisterEngineDrivenRequest, call?: CallOptions): Promise<EngineDrivenInfo> {
    const payload = { ...identity(req), layout: layoutMap(req.layout) };
    const r = (await this.request('REGISTER_ENGINE_DRIVEN', payload, call)) as Reply;
    const info: EngineDrivenInfo = {
      chunkSize: r.chunk_size as number,
      chunkBytes: r.chunk_bytes as number,
      maxChunksPerMessage: r.max_chunks_per_message as number,
      stagingChunks: r.staging_chunks as number,
    };
    this.registrations.set(req.instanceId, { type: 'REGISTER_ENGINE_DRIVEN', payload });
    this.engineDriven.set(req.instanceId, info);
    return info;
  }

  async unregisterKvCache(instanceId: string, call?: CallOptions): Promise<void> {
    this.registrations.delete(instanceId);
    this.engineDriven.delete(instanceId);
    await this.request('UNREGISTER_KV_CACHE', { instance_id: instanceId }, call);
  }

  async lookup(args: LookupArgs, call?: CallOptions): Promise<void> {
    await this.request(
      'LOOKUP',
      {
        request_id: args.requestId,
        model_name: args.modelName,
        tokens: tokenBin(args.tokens),
        end: args.end,
        world_size: args.worldSize,
        worker_id: args.workerId,
        tp_size: args.tpSize,
        cache_salt: args.cacheSalt,
        trace: carrier(args.trace),
      },
      call,
    );
  }

  async queryPrefetchStatus(requestId: string, call?: CallOptions): Promise<QueryReply> {
    const r = (await this.request('QUERY_PREFETCH_STATUS', { request_id: requestId }, call)) as Reply;
    return { hitChunks: r.hit_chunks as number | null, hitTokens: r.hit_tokens as number | null };
  }

  async freeLookupLocks(
    args: { requestId: string; start?: number; end?: number },
    call?: CallOptions,
  ): Promise<number> {
    const r = (await this.request(
      'FREE_LOOKUP_LOCKS',
      { request_id: args.requestId, start: args.start, end: args.end },
      call,
    )) as Reply;
    return r.released as number;
  }

  /** Ends the request (closes its trace). Resolves with whether the server knew the session. */
  async endSession(requestId: string, args: { trace?: TraceCarrier } = {}, call?: CallOptions): Promise<boolean> {
    const r = (await this.request('END_SESSION', { request_id: requestId, trace: carrier(args.trace) }, call)) as Reply;
    return r.known as boolean;
  }

  /** CUDA IPC mode store: the server copies from the engine's blocks. */
  async store(args: TransferArgs, call?: CallOptions): Promise<StoreReply> {
    return storeReply((await this.request('STORE', transferMap(args), call)) as Reply);
  }

  /** CUDA IPC mode retrieve: the server copies into the engine's blocks. */
  async retrieve(args: TransferArgs, call?: CallOptions): Promise<RetrieveReply> {
    return retrieveReply((await this.request('RETRIEVE', transferMap(args), call)) as Reply);
  }

  async prepareStore(args: RangeArgs, call?: CallOptions): Promise<PrepareStoreReply> {
    const r = (await this.request('PREPARE_STORE', rangeMap(args), call)) as Reply;
    return {
      handle: r.handle as number,
      chunks: r.chunks as number,
      chunkBytes: r.chunk_bytes as number,
      start: r.start as number,
      end: r.end as number,
    };
  }

  async commitStore(handle: number, data: Uint8Array, call?: CallOptions): Promise<StoreReply> {
    return storeReply((await this.request('COMMIT_STORE', { handle, data }, call)) as Reply);
  }

  /**
   * Engine-driven store of `[start, end)`: `data` holds the range's chunks back to back in the
   * wire chunk format. Split into PREPARE_STORE/COMMIT_STORE pairs that fit one message each.
   */
  async storeData(args: RangeArgs, data: Uint8Array, call?: CallOptions): Promise<StoreReply> {
    const info = this.engineInfo(args.instanceId);
    const { start, end } = this.alignedRange(args, info);
    const chunks = (end - start) / info.chunkSize;
    if (data.length !== chunks * info.chunkBytes) {
      throw new KvmpClientError('BAD_FIELD', `data must be ${chunks * info.chunkBytes} bytes for ${chunks} chunks`);
    }
    const total = { ok: true, requestedChunks: 0, storedChunks: 0, dedupedChunks: 0, failedChunks: 0, bytes: 0 };
    let error: string | undefined;
    const step = info.maxChunksPerMessage;
    for (let c = 0; c < chunks || (chunks === 0 && c === 0); c += step) {
      const n = Math.min(step, chunks - c);
      const s = start + c * info.chunkSize;
      const prep = await this.prepareStore({ ...args, start: s, end: s + n * info.chunkSize }, call);
      const r = await this.commitStore(
        prep.handle,
        data.subarray(c * info.chunkBytes, (c + n) * info.chunkBytes),
        call,
      );
      total.ok &&= r.ok;
      total.requestedChunks += r.requestedChunks;
      total.storedChunks += r.storedChunks;
      total.dedupedChunks += r.dedupedChunks;
      total.failedChunks += r.failedChunks;
      total.bytes += r.bytes;
      error ??= r.error;
      if (chunks === 0) break;
    }
    return error === undefined ? total : { ...total, error };
  }

  /** Engine-driven retrieve of `[start, end)`: the chunks' KV bytes, split over messages as needed. */
  async retrieveData(args: RangeArgs, call?: CallOptions): Promise<RetrieveReply> {
    const info = this.engineInfo(args.instanceId);
    const { start, end } = this.alignedRange(args, info);
    const chunks = (end - start) / info.chunkSize;
    const step = info.maxChunksPerMessage;
    if (chunks <= step) {
      return retrieveReply((await this.request('RETRIEVE_DATA', rangeMap({ ...args, start, end }), call)) as Reply);
    }
    const parts: Uint8Array[] = [];
    let retrieved = 0;
    let tokens = 0;
    let bytes = 0;
    for (let c = 0; c < chunks; c += step) {
      const n = Math.min(step, chunks - c);
      const s = start + c * info.chunkSize;
      const r = retrieveReply(
        (await this.request(
          'RETRIEVE_DATA',
          rangeMap({ ...args, start: s, end: s + n * info.chunkSize }),
          call,
        )) as Reply,
      );
      if (!r.ok) return { ...r, retrievedChunks: retrieved, data: concat(parts) };
      retrieved += r.retrievedChunks;
      tokens += r.tokens;
      bytes += r.bytes;
      if (r.data) parts.push(r.data);
    }
    return { ok: true, retrievedChunks: retrieved, tokens, bytes, data: concat(parts) };
  }

  private engineInfo(instanceId: string): EngineDrivenInfo {
    const info = this.engineDriven.get(instanceId);
    if (info === undefined) {
      throw new KvmpClientError(
        'UNKNOWN_INSTANCE',
        'register the instance with registerEngineDriven on this client first',
      );
    }
    return info;
  }

  private alignedRange(args: RangeArgs, info: EngineDrivenInfo): { start: number; end: number } {
    const start = args.start ?? 0;
    const rawEnd = args.end ?? args.tokens.length;
    return { start, end: Math.max(start, rawEnd - (rawEnd % info.chunkSize)) };
  }

  async clear(call?: CallOptions): Promise<{ cleared: number; kept: number }> {
    return (await this.request('CLEAR', {}, call)) as { cleared: number; kept: number };
  }

  async getChunkSize(call?: CallOptions): Promise<number> {
    return (await this.request('GET_CHUNK_SIZE', {}, call)) as number;
  }

  async ping(instanceId?: string, call?: CallOptions): Promise<boolean> {
    return (await this.request('PING', instanceId === undefined ? {} : { instance_id: instanceId }, call)) as boolean;
  }

  /** Fails every pending call with CLIENT_CLOSED and closes the socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new KvmpClientError('CLIENT_CLOSED', `${p.type}: the client was closed`));
    }
    this.sock.close();
    this.options.onStateChange?.('closed');
  }
}

function identity(req: {
  instanceId: string;
  modelName: string;
  worldSize?: number;
  rank?: number;
  workerId?: number;
  engineId?: string;
}): Record<string, unknown> {
  return {
    instance_id: req.instanceId,
    model_name: req.modelName,
    world_size: req.worldSize,
    rank: req.rank,
    worker_id: req.workerId,
    engine_id: req.engineId,
  };
}

function carrier(explicit: TraceCarrier | undefined): TraceCarrier | undefined {
  return explicit ?? captureTraceCarrier();
}

function rangeMap(a: RangeArgs): Record<string, unknown> {
  return {
    request_id: a.requestId,
    instance_id: a.instanceId,
    tokens: tokenBin(a.tokens),
    start: a.start,
    end: a.end,
    cache_salt: a.cacheSalt,
    trace: carrier(a.trace),
  };
}

function transferMap(a: TransferArgs): Record<string, unknown> {
  return { ...rangeMap(a), block_ids: [...a.blockIds], wait_event: a.waitEvent, skip_first_tokens: a.skipFirstTokens };
}

function storeReply(r: Reply): StoreReply {
  return {
    ok: r.ok as boolean,
    requestedChunks: r.requested_chunks as number,
    storedChunks: r.stored_chunks as number,
    dedupedChunks: r.deduped_chunks as number,
    failedChunks: r.failed_chunks as number,
    bytes: r.bytes as number,
    ...(typeof r.error === 'string' ? { error: r.error } : {}),
    ...(r.done_event instanceof Uint8Array ? { doneEvent: r.done_event } : {}),
  };
}

function retrieveReply(r: Reply): RetrieveReply {
  return {
    ok: r.ok as boolean,
    retrievedChunks: r.retrieved_chunks as number,
    tokens: r.tokens as number,
    bytes: r.bytes as number,
    ...(typeof r.error === 'string' ? { error: r.error } : {}),
    ...(r.done_event instanceof Uint8Array ? { doneEvent: r.done_event } : {}),
    ...(r.data instanceof Uint8Array ? { data: r.data } : {}),
  };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
