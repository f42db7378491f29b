import type { TraceCarrier } from '@kvmp/tracing';
import { invalid } from '../errors.js';
import { checkCacheSalt, checkModelName, kvRank, type ObjectKey, objectKey } from '../keys/object-key.js';
import { fullChunks, type TokenIds, toTokenArray } from '../keys/tokens.js';
import type { ReadLease } from '../l1/l1-store.js';
import { MAX_READ_LOCK_COUNT } from '../l1/l1-store.js';
import type { ServerContext, SessionState } from './context.js';
import { sessionHashes } from './hashing.js';
import { checkCount, checkRequestId } from './validate.js';

export interface LookupRequest {
  /** The inference request id: the session. */
  readonly requestId: string;
  readonly modelName: string;
  /** The prompt's token ids (only full chunks are looked up). */
  readonly tokens: TokenIds;
  /** Look up only `[0, end)`; default all tokens. */
  readonly end?: number;
  /** KV world size the keys were stored under. Default: the registered world size of the model. */
  readonly worldSize?: number;
  /** Look up one rank's keys only; default every rank of the world size. */
  readonly workerId?: number;
  /** Engine tensor-parallel size: with MLA (`tpSize > worldSize`) each key is locked for `tpSize` readers. */
  readonly tpSize?: number;
  readonly cacheSalt?: string;
}

export interface CheckedLookup {
  readonly requestId: string;
  readonly modelName: string;
  readonly tokens: Uint32Array;
  readonly end: number;
  readonly worldSize: number | undefined;
  readonly workerId: number | undefined;
  readonly tpSize: number;
  readonly cacheSalt: string;
}

export function checkLookup(req: LookupRequest): CheckedLookup {
  if (typeof req !== 'object' || req === null) throw invalid('lookup: request must be an object');
  const tokens = toTokenArray(req.tokens);
  const end = req.end === undefined ? tokens.length : checkCount(req.end, 'end', 0, tokens.length);
  return {
    requestId: checkRequestId(req.requestId),
    modelName: checkModelName(req.modelName),
    tokens,
    end,
    worldSize: req.worldSize === undefined ? undefined : checkCount(req.worldSize, 'worldSize', 1, 255),
    workerId: req.workerId === undefined ? undefined : checkCount(req.workerId, 'workerId', 0, 254),
    tpSize: checkCount(req.tpSize, 'tpSize', 1, 255, 1),
    cacheSalt: checkCacheSalt(req.cacheSalt),
  };
}

/** Registered world size for a model (the one given, else the only one registered). */
function resolveWorldSize(ctx: ServerContext, modelName: string, given: number | undefined): number | undefined {
  let found: number | undefined;
  for (const inst of ctx.instances.values()) {
    if (inst.modelName !== modelName) continue;
    if (given !== undefined) {
      if (inst.worldSize === given) return given;
      continue;
    }
    if (found === undefined || inst.worldSize < found) found = inst.worldSize;
  }
  return found;
}

/** MLA: the engine divides world size by tp, and every TP rank reads the same keys. */
export function extraReaders(tpSize: number, worldSize: number): number {
  return tpSize > worldSize ? tpSize - 1 : 0;
}

/**
 * `lookup` (the anchor's lookup_prefetch start), inside the session's actor. Publishes
 * `MP_REQUEST_START` then `MP_LOOKUP_PREFETCH_START`, hashes the prompt (cached per session),
 * and read-locks the contiguous L1 prefix: chunk i counts as a hit only if every rank's key
 * is ready. Nothing after the first miss is locked. The result waits for queryPrefetchStatus.
 */
export async function lookupInSession(
  ctx: ServerContext,
  session: SessionState,
  req: CheckedLookup,
  trace: TraceCarrier | undefined,
): Promise<void> {
  const sid = req.requestId;
  ctx.counters.lookups++;
  ctx.publisher.publish('MP_REQUEST_START', sid, { model_name: req.modelName }, { trace });
  ctx.publisher.publish('MP_LOOKUP_PREFETCH_START', sid, { model_name: req.modelName }, { trace });
  // A second lookup in one session replaces the first: its unconsumed locks go back.
  releaseHeldLocks(ctx, session, 0, Number.POSITIVE_INFINITY);
  session.job = undefined;

  const worldSize = resolveWorldSize(ctx, req.modelName, req.worldSize);
  const chunks = fullChunks(req.end, ctx.chunkTokens);
  if (worldSize === undefined) {
    session.job = job(req.modelName, 0, 0, 0, 'no_gpu_context');
    return;
  }
  if (chunks === 0) {
    session.job = job(req.modelName, 0, 0, 0, 'empty_chunk_hashes');
    return;
  }
  let hashes: readonly string[];
  try {
    if (req.workerId !== undefined && req.workerId >= worldSize) {
      throw invalid(`workerId ${req.workerId} is not below the world size ${worldSize}`);
    }
    hashes = await sessionHashes(ctx, session, req.tokens, chunks);
  } catch (err) {
    // The lookup span is open: answer 0 hits so queryPrefetchStatus still closes it.
    session.job = job(req.modelName, 0, 0, 0, '');
    throw err;
  }
  const ranks: number[] = [];
  if (req.workerId !== undefined) ranks.push(kvRank(worldSize, req.workerId));
  else for (let r = 0; r < worldSize; r++) ranks.push(kvRank(worldSize, r));

  // Contiguous prefix of chunks whose keys are ready on every rank (check, then lock: the L1
  // has a single owner, so nothing changes in between).
  const keys: ObjectKey[] = [];
  let prefix = 0;
  outer: for (; prefix < chunks; prefix++) {
    for (const rank of ranks) {
      const key = objectKey(hashes[prefix], req.modelName, rank, req.cacheSalt);
      const obj = ctx.l1.get(key);
      if (obj === undefined || obj.state !== 'ready' || obj.removed) break outer;
      keys.push(key);
    }
  }
  keys.length = prefix * ranks.length;
  const readers = Math.min(MAX_READ_LOCK_COUNT, 1 + extraReaders(req.tpSize, worldSize));
  const leases = ctx.l1.reserveRead(keys, readers, sid);
  for (let i = 0; i < keys.length; i++) {
    const lease = leases[i];
    if (lease === undefined) continue;
    session.locks.set(keys[i], { lease, remaining: readers, chunk: Math.floor(i / ranks.length) });
    session.keys.add(keys[i]);
  }
  session.job = job(req.modelName, chunks * ctx.chunkTokens, prefix, keys.length, '');
}

function job(
  modelName: string,
  requestedTokens: number,
  hitChunks: number,
  l1HitKeys: number,
  earlyExitReason: '' | 'no_gpu_context' | 'empty_chunk_hashes',
): SessionState['job'] {
  return { modelName, requestedTokens, hitChunks, l1HitKeys, earlyExitReason, published: false };
}

/**
 * Hit chunks of the session's lookup (L1 only: there is no L2 yet, so the answer is ready as
 * soon as the lookup ran). The first answer publishes `MP_LOOKUP_PREFETCH_END`, exactly once
 * per lookup; later calls return the same count without publishing. Unknown session: 0.
 */
export function queryInSession(ctx: ServerContext, session: SessionState): number {
  const j = session.job;
  if (j === undefined) return 0;
  if (!j.published) {
    j.published = true;
    const hitTokens = j.hitChunks * ctx.chunkTokens;
    ctx.publisher.publish('MP_LOOKUP_PREFETCH_END', session.requestId, {
      found_count: j.hitChunks,
      requested_tokens: j.requestedTokens,
      hit_tokens: hitTokens,
      l1_hit_tokens: hitTokens,
      l2_hit_tokens: 0,
      l1_hit_keys: j.l1HitKeys,
      l2_hit_keys: 0,
      early_exit_reason: j.earlyExitReason,
      model_name: j.modelName,
    });
  }
  return j.hitChunks;
}

/** Releases the session's unconsumed lookup locks on chunks `[fromChunk, toChunk)`. */
export function releaseHeldLocks(
  ctx: ServerContext,
  session: SessionState,
  fromChunk: number,
  toChunk: number,
): number {
  if (session.locks.size === 0) return 0;
  const release: { lease: ReadLease; count: number }[] = [];
  for (const [key, held] of session.locks) {
    if (held.chunk < fromChunk || held.chunk >= toChunk) continue;
    release.push({ lease: held.lease, count: held.remaining });
    session.locks.delete(key);
  }
  ctx.l1.releaseRead(release, session.requestId);
  return release.length;
}
