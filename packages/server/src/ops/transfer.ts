import type { TraceCarrier } from '@kvmp/tracing';
import { invalid, KvmpServerError } from '../errors.js';
import type { CopyResult, HostChunkRef, RetrievePlan, StorePlan } from '../gpu/contract.js';
import { checkCacheSalt, kvRank, type ObjectKey, objectKey } from '../keys/object-key.js';
import { type TokenIds, toTokenArray } from '../keys/tokens.js';
import type { L1Object, ReadLease } from '../l1/l1-store.js';
import type { HeldLock, InstanceInfo, ServerContext, SessionState } from './context.js';
import { sessionHashes } from './hashing.js';
import { checkCount, checkInstanceId, checkRange, checkRequestId } from './validate.js';

interface TransferRequestBase {
  readonly requestId: string;
  /** The registered KV cache (engine worker / rank) to copy from or to. */
  readonly instanceId: string;
  /** The request's full token ids, resent each time (the session caches their hashes). */
  readonly tokens: TokenIds;
  /** Chunk-aligned start of the op's tokens; default 0. */
  readonly start?: number;
  /** End of the op's tokens (aligned down to a chunk); default all full chunks. */
  readonly end?: number;
  /** Engine block ids covering `[start, end)`: token t of the op lives in `blockIds[t / blockSize]`. */
  readonly blockIds: readonly number[];
  readonly cacheSalt?: string;
  /** cuda: engine IPC event to wait on before copying. */
  readonly waitEvent?: Uint8Array;
}

export interface StoreRequest extends TransferRequestBase {}

export interface RetrieveRequest extends TransferRequestBase {
  /** Leave the first N tokens of the op in the engine's blocks untouched (already there). */
  readonly skipFirstTokens?: number;
}

export interface StoreResult {
  /** False only when the copy itself failed (or an internal error); OOM is reported in the counts. */
  readonly ok: boolean;
  readonly opId: number;
  /** Full chunks in the op's range. */
  readonly requestedChunks: number;
  /** Chunks copied into L1 and now readable. */
  readonly storedChunks: number;
  /** Chunks already present (not copied again). */
  readonly dedupedChunks: number;
  /** Chunks not stored: out of L1 memory, or the copy failed. */
  readonly failedChunks: number;
  readonly bytes: number;
  readonly error?: string;
  readonly doneEvent?: Uint8Array;
}

export interface RetrieveResult {
  readonly ok: boolean;
  readonly opId: number;
  readonly retrievedChunks: number;
  /** Tokens written into the engine's blocks. */
  readonly tokens: number;
  readonly bytes: number;
  readonly error?: string;
  readonly doneEvent?: Uint8Array;
}

export interface CheckedTransfer {
  readonly requestId: string;
  readonly inst: InstanceInfo;
  readonly tokens: Uint32Array;
  readonly start: number;
  readonly end: number;
  readonly firstChunk: number;
  readonly chunks: number;
  readonly blockIds: readonly number[];
  readonly cacheSalt: string;
  readonly skipFirstTokens: number;
  readonly waitEvent: Uint8Array | undefined;
}

/** Validates everything that can be validated before the op is submitted (no events yet). */
export function checkTransfer(ctx: ServerContext, req: RetrieveRequest, what: 'store' | 'retrieve'): CheckedTransfer {
  if (typeof req !== 'object' || req === null) throw invalid(`${what}: request must be an object`);
  const requestId = checkRequestId(req.requestId);
  const instanceId = checkInstanceId(req.instanceId);
  const inst = ctx.instances.get(instanceId);
  if (inst === undefined)
    throw new KvmpServerError('UNKNOWN_INSTANCE', `${what}: no KV cache registered as ${instanceId}`);
  const tokens = toTokenArray(req.tokens);
  const range = checkRange(req.start, req.end, tokens.length, ctx.chunkTokens);
  const blockSize = inst.layout.blockSize;
  const needBlocks = (range.end - range.start) / blockSize;
  const blockIds = req.blockIds;
  if (!Array.isArray(blockIds)) throw new KvmpServerError('BAD_BLOCK_IDS', `${what}: blockIds must be an array`);
  if (blockIds.length < needBlocks) {
    throw new KvmpServerError(
      'BAD_BLOCK_IDS',
      `${what}: ${blockIds.length} block ids for ${needBlocks} blocks of tokens`,
    );
  }
  const numBlocks = inst.layout.numBlocks;
  for (let i = 0; i < needBlocks; i++) {
    const b = blockIds[i];
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b >= numBlocks) {
      throw new KvmpServerError('BAD_BLOCK_IDS', `${what}: blockIds[${i}] is not a block id in [0, ${numBlocks})`);
    }
  }
  const skipFirstTokens = checkCount(req.skipFirstTokens, 'skipFirstTokens', 0, range.end - range.start, 0);
  if (req.waitEvent !== undefined && !(req.waitEvent instanceof Uint8Array))
    throw invalid(`${what}: waitEvent must be bytes`);
  return {
    requestId,
    inst,
    tokens,
    ...range,
    blockIds: blockIds.length === needBlocks ? blockIds : blockIds.slice(0, needBlocks),
    cacheSalt: checkCacheSalt(req.cacheSalt),
    skipFirstTokens,
    waitEvent: req.waitEvent,
  };
}

let localOpIds = 0;
function newOpId(ctx: ServerContext): number {
  return ctx.publisher.enabled ? ctx.publisher.nextOpId() : ++localOpIds >>> 0;
}

type CopyKind = 'store' | 'retrieve';

/**
 * Publishes a START/END pair for a copy the GPU worker never saw (nothing to copy, a refused
 * retrieve, an internal error), so every SUBMITTED is matched by an END and no span stays open.
 */
function publishLocalCopyEvents(
  ctx: ServerContext,
  kind: CopyKind,
  sid: string,
  opId: number,
  inst: InstanceInfo,
  outcome: { count: number; success: boolean; error?: string },
): void {
  const base = { device: ctx.device, engine_id: inst.engineId, model_name: inst.modelName };
  const opts = { opId, workerId: inst.workerId };
  const error = outcome.error === undefined ? {} : { error: outcome.error };
  if (kind === 'store') {
    ctx.publisher.publish('MP_STORE_START', sid, base, opts);
    ctx.publisher.publish(
      'MP_STORE_END',
      sid,
      { ...base, stored_count: outcome.count, total_bytes: 0, num_tokens: 0, success: outcome.success, ...error },
      opts,
    );
  } else {
    ctx.publisher.publish('MP_RETRIEVE_START', sid, base, opts);
    ctx.publisher.publish(
      'MP_RETRIEVE_END',
      sid,
      { ...base, retrieved_count: outcome.count, total_bytes: 0, num_tokens: 0, success: outcome.success, ...error },
      opts,
    );
  }
}

function track<T>(ctx: ServerContext, session: SessionState, p: Promise<T>): Promise<T> {
  session.inflight++;
  ctx.inflight.add(p);
  void p.finally(() => {
    session.inflight--;
    ctx.inflight.delete(p);
  });
  return p;
}

function chunkBlockIds(blockIds: readonly number[], chunkIndices: readonly number[], perChunk: number): number[] {
  const out: number[] = new Array(chunkIndices.length * perChunk);
  let o = 0;
  for (const c of chunkIndices) for (let b = c * perChunk; b < (c + 1) * perChunk; b++) out[o++] = blockIds[b];
  return out;
}

const BEFORE_COPY = 'internal error before the copy';

/**
 * How both directions start: a new op id, the instance seen alive, and the SUBMITTED sentinel,
 * published before anything is enqueued.
 */
function submitted(
  ctx: ServerContext,
  type: 'MP_STORE_SUBMITTED' | 'MP_RETRIEVE_SUBMITTED',
  req: CheckedTransfer,
  trace: TraceCarrier | undefined,
): number {
  const opId = newOpId(ctx);
  req.inst.lastSeen = ctx.now();
  ctx.publisher.publish(type, req.requestId, { device: ctx.device }, { opId, workerId: req.inst.workerId, trace });
  return opId;
}

/** The op's object keys. If hashing throws, `onError` publishes the op's failed END first. */
async function keysOrFail(
  ctx: ServerContext,
  session: SessionState,
  req: CheckedTransfer,
  onError: () => void,
): Promise<ObjectKey[]> {
  try {
    const hashes = await sessionHashes(ctx, session, req.tokens, req.firstChunk + req.chunks);
    return opKeys(req, hashes);
  } catch (err) {
    onError();
    throw err;
  }
}

function opKeys(req: CheckedTransfer, hashes: readonly string[]): ObjectKey[] {
  const rank = kvRank(req.inst.worldSize, req.inst.rank);
  const keys: ObjectKey[] = new Array(req.chunks);
  for (let i = 0; i < req.chunks; i++)
    keys[i] = objectKey(hashes[req.firstChunk + i], req.inst.modelName, rank, req.cacheSalt);
  return keys;
}

export interface Submitted<R> {
  readonly done: Promise<R>;
}

/**
 * `retrieve`, inside the session's actor. Publishes `MP_RETRIEVE_SUBMITTED` before anything is
 * enqueued. All-or-nothing on the locks this session's lookup took: if any chunk of the range
 * is not held, nothing is copied, this reader's share of the held locks is released, and
 * `L1_READ_FAILED` is published. The locks become pins for the copy and are released (and
 * `L1_READ_FINISHED` published) only when the copy completes.
 */
export async function submitRetrieve(
  ctx: ServerContext,
  session: SessionState,
  req: CheckedTransfer,
  trace: TraceCarrier | undefined,
): Promise<Submitted<RetrieveResult>> {
  const sid = req.requestId;
  const inst = req.inst;
  ctx.counters.retrieves++;
  const opId = submitted(ctx, 'MP_RETRIEVE_SUBMITTED', req, trace);
  const fail = (error: string): Submitted<RetrieveResult> => {
    ctx.counters.retrieveFailures++;
    publishLocalCopyEvents(ctx, 'retrieve', sid, opId, inst, { count: 0, success: false, error });
    return { done: Promise.resolve({ ok: false, opId, retrievedChunks: 0, tokens: 0, bytes: 0, error }) };
  };
  const keys = await keysOrFail(ctx, session, req, () => fail(BEFORE_COPY));
  if (req.chunks === 0) {
    publishLocalCopyEvents(ctx, 'retrieve', sid, opId, inst, { count: 0, success: true });
    return { done: Promise.resolve({ ok: true, opId, retrievedChunks: 0, tokens: 0, bytes: 0 }) };
  }

  const held: HeldLock[] = [];
  let notFound = 0;
  let notLocked = 0;
  for (const key of keys) {
    const h = session.locks.get(key);
    if (h !== undefined && h.remaining > 0 && ctx.l1.leaseLive(h.lease)) held.push(h);
    else if (ctx.l1.get(key)?.state === 'ready') notLocked++;
    else notFound++;
  }
  if (notFound + notLocked > 0) {
    // This reader will not copy: give back its share of what the lookup locked.
    const release: { lease: ReadLease; count: number }[] = [];
    for (const h of held) {
      release.push({ lease: h.lease, count: 1 });
      consume(session, h);
    }
    ctx.l1.releaseRead(release, sid);
    const reason = notFound > 0 ? 'not_found' : 'not_locked';
    ctx.publisher.publish('L1_READ_FAILED', sid, { during: 'l1_retrieve', reason, key_count: notFound + notLocked });
    return fail(`${notFound + notLocked} of ${keys.length} chunks are not locked by this session's lookup (${reason})`);
  }

  const leases = held.map((h) => h.lease);
  ctx.l1.pinForCopy(leases);
  for (const h of held) consume(session, h);
  const objects = leases.map((l) => l.obj);
  for (const key of keys) session.keys.add(key);

  const plan: RetrievePlan = {
    instanceId: inst.instanceId,
    sessionId: sid,
    opId,
    workerId: inst.workerId,
    modelName: inst.modelName,
    engineId: inst.engineId,
    blockIds: req.blockIds,
    chunkTokens: ctx.chunkTokens,
    chunks: objects.map((o) => hostRef(ctx, o)),
    ...(req.skipFirstTokens > 0 ? { skipFirstTokens: req.skipFirstTokens } : {}),
    ...(req.waitEvent ? { waitEvent: req.waitEvent } : {}),
  };
  let enqueued: Promise<CopyResult>;
  try {
    enqueued = ctx.gpu.retrieve(plan);
  } catch (err) {
    enqueued = Promise.reject(err);
  }
  const done = enqueued.then(
    (r): RetrieveResult => {
      ctx.l1.unpinAfterRead(objects, sid);
      if (!r.ok) ctx.counters.retrieveFailures++;
      return {
        ok: r.ok,
        opId,
        retrievedChunks: r.ok ? objects.length : 0,
        tokens: r.ok ? r.tokens : 0,
        bytes: r.bytes,
        ...(r.error === undefined ? {} : { error: r.error }),
        ...(r.doneEvent === undefined ? {} : { doneEvent: r.doneEvent }),
      };
    },
    (err: unknown): RetrieveResult => {
      ctx.l1.unpinAfterRead(objects, sid);
      ctx.counters.retrieveFailures++;
      const error = `gpu worker: ${err instanceof Error ? err.message : String(err)}`;
      publishLocalCopyEvents(ctx, 'retrieve', sid, opId, inst, { count: 0, success: false, error });
      return { ok: false, opId, retrievedChunks: 0, tokens: 0, bytes: 0, error };
    },
  );
  return { done: track(ctx, session, done) };
}

function hostRef(ctx: ServerContext, o: L1Object): HostChunkRef {
  return ctx.segmentBase === 0 ? o.ref : { segment: ctx.segmentBase + o.ref.segment, offset: o.ref.offset };
}

function consume(session: SessionState, h: HeldLock): void {
  h.remaining--;
  if (h.remaining <= 0) session.locks.delete(h.lease.obj.key);
}

/**
 * `store`, inside the session's actor. Publishes `MP_STORE_SUBMITTED` before anything is
 * enqueued; reserves only keys not present (dedup), stopping at the first chunk L1 cannot fit
 * even after eviction (reported in the result, an `L1_ALLOCATION_FAILED` event and the L1
 * stats). The objects become readable when the copy completes. An END event is published on
 * every path: by the GPU worker for the copy, here when there is nothing to copy or on error.
 */
export async function submitStore(
  ctx: ServerContext,
  session: SessionState,
  req: CheckedTransfer,
  trace: TraceCarrier | undefined,
): Promise<Submitted<StoreResult>> {
  const sid = req.requestId;
  const inst = req.inst;
  ctx.counters.stores++;
  const opId = submitted(ctx, 'MP_STORE_SUBMITTED', req, trace);
  const keys = await keysOrFail(ctx, session, req, () => {
    ctx.counters.storeFailures++;
    publishLocalCopyEvents(ctx, 'store', sid, opId, inst, { count: 0, success: false, error: BEFORE_COPY });
  });
  const reservation = ctx.l1.reserveWrite(keys, inst.slotBytes, inst.chunkBytes, sid, { modelName: inst.modelName });
  for (const key of keys) session.keys.add(key);
  let deduped = 0;
  let oom = 0;
  for (const o of reservation.outcomes) {
    if (o === 'present') deduped++;
    else if (o === 'oom') oom++;
  }
  const oomError = oom > 0 ? `out of L1 memory: ${oom} of ${keys.length} chunks not stored` : undefined;
  const objects = reservation.objects;
  if (objects.length === 0) {
    publishLocalCopyEvents(ctx, 'store', sid, opId, inst, {
      count: 0,
      success: oom === 0,
      ...(oomError ? { error: oomError } : {}),
    });
    const result: StoreResult = {
      ok: true,
      opId,
      requestedChunks: keys.length,
      storedChunks: 0,
      dedupedChunks: deduped,
      failedChunks: oom,
      bytes: 0,
      ...(oomError ? { error: oomError } : {}),
    };
    return { done: Promise.resolve(result) };
  }

  const plan: StorePlan = {
    instanceId: inst.instanceId,
    sessionId: sid,
    opId,
    workerId: inst.workerId,
    modelName: inst.modelName,
    engineId: inst.engineId,
    blockIds: chunkBlockIds(req.blockIds, reservation.indices, inst.blocksPerChunk),
    chunkTokens: ctx.chunkTokens,
    chunks: objects.map((o) => hostRef(ctx, o)),
    ...(req.waitEvent ? { waitEvent: req.waitEvent } : {}),
  };
  let enqueued: Promise<CopyResult>;
  try {
    enqueued = ctx.gpu.store(plan);
  } catch (err) {
    enqueued = Promise.reject(err);
  }
  const finish = (ok: boolean, objs: readonly L1Object[]): void => ctx.l1.finishWrite(objs, ok, sid);
  const done = enqueued.then(
    (r): StoreResult => {
      finish(r.ok, objects);
      if (!r.ok) ctx.counters.storeFailures++;
      const error = r.error ?? oomError;
      return {
        ok: r.ok,
        opId,
        requestedChunks: keys.length,
        storedChunks: r.ok ? objects.length : 0,
        dedupedChunks: deduped,
        failedChunks: oom + (r.ok ? 0 : objects.length),
        bytes: r.bytes,
        ...(error === undefined ? {} : { error }),
        ...(r.doneEvent === undefined ? {} : { doneEvent: r.doneEvent }),
      };
    },
    (err: unknown): StoreResult => {
      finish(false, objects);
      ctx.counters.storeFailures++;
      const error = `gpu worker: ${err instanceof Error ? err.message : String(err)}`;
      publishLocalCopyEvents(ctx, 'store', sid, opId, inst, { count: 0, success: false, error });
      return {
        ok: false,
        opId,
        requestedChunks: keys.length,
        storedChunks: 0,
        dedupedChunks: deduped,
        failedChunks: oom + objects.length,
        bytes: 0,
        error,
      };
    },
  );
  return { done: track(ctx, session, done) };
}
