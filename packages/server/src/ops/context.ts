import type { EventPublisher } from '@kvmp/tracing';
import type { ActorRegistry } from '../actors/actor-registry.js';
import type { GpuWorkerLike, KvLayoutSpec } from '../gpu/contract.js';
import type { ChunkHasher } from '../keys/chunk-hasher.js';
import { HashChainCache } from '../keys/hash-chain-cache.js';
import type { ObjectKey } from '../keys/object-key.js';
import type { L1Store, ReadLease } from '../l1/l1-store.js';
import type { HashPool } from '../pool/hash-pool.js';

/** A registered engine worker's KV cache (one rank). */
export interface InstanceInfo {
  readonly instanceId: string;
  readonly modelName: string;
  readonly worldSize: number;
  /** Rank whose keys this instance stores and retrieves. */
  readonly rank: number;
  /** `workerId` on events: the engine's kv rank. */
  readonly workerId: number;
  readonly engineId: string;
  readonly layout: KvLayoutSpec;
  readonly chunkBytes: number;
  readonly slotBytes: number;
  readonly blocksPerChunk: number;
  lastSeen: number;
}

/** What one lookup found; answered (and published) by `queryPrefetchStatus`. */
export interface PrefetchJob {
  readonly modelName: string;
  readonly requestedTokens: number;
  readonly hitChunks: number;
  readonly l1HitKeys: number;
  readonly earlyExitReason: '' | 'no_gpu_context' | 'empty_chunk_hashes';
  published: boolean;
}

/** A read lock a session's lookup took and no retrieve has consumed yet. */
export interface HeldLock {
  readonly lease: ReadLease;
  /** Readers still owed: 1 + MLA extra readers, minus retrieves submitted. */
  remaining: number;
  /** Chunk index in the prompt (for freeLookupLocks ranges). */
  readonly chunk: number;
}

/** Per-session (per request id) state: owned by the session's actor. */
export interface SessionState {
  readonly requestId: string;
  readonly chain: HashChainCache;
  job: PrefetchJob | undefined;
  readonly locks: Map<ObjectKey, HeldLock>;
  /** Keys this session looked up, stored or retrieved: touched at end_session. */
  readonly keys: Set<ObjectKey>;
  /** Copies submitted and not yet complete. */
  inflight: number;
}

export function createSessionState(requestId: string, chunkTokens: number): SessionState {
  return {
    requestId,
    chain: new HashChainCache(chunkTokens),
    job: undefined,
    locks: new Map(),
    keys: new Set(),
    inflight: 0,
  };
}

export interface ServerCounters {
  lookups: number;
  retrieves: number;
  stores: number;
  retrieveFailures: number;
  storeFailures: number;
  sessionsExpired: number;
}

export interface ServerContext {
  readonly chunkTokens: number;
  readonly l1: L1Store;
  readonly hasher: ChunkHasher;
  readonly pool: HashPool;
  readonly publisher: EventPublisher;
  readonly gpu: GpuWorkerLike;
  /** `cpu` or `cuda:N`: the `device` field of the events. */
  readonly device: string;
  /** Index the GPU worker gave the first L1 segment (segments are appended there). */
  readonly segmentBase: number;
  readonly instances: Map<string, InstanceInfo>;
  readonly sessions: ActorRegistry<SessionState>;
  readonly counters: ServerCounters;
  /** Copies in flight (close() waits for them). */
  readonly inflight: Set<Promise<unknown>>;
  readonly now: () => number;
}
