export type { Actor } from './actors/actor-registry.js';
export { ActorRegistry } from './actors/actor-registry.js';
export { Mailbox } from './actors/mailbox.js';
// --- wire protocol, client, HTTP and CLI (issue 6) ---
export type { ClientErrorCode } from './client/client-error.js';
export { KvmpClientError } from './client/client-error.js';
export type { DemoEngineOptions, DemoRequestReport } from './client/demo-engine.js';
export { DEMO_LAYOUT, DemoEngine, demoPrompt } from './client/demo-engine.js';
export type { ClientState, KvmpClientOptions } from './client/kvmp-client.js';
export { KvmpClient } from './client/kvmp-client.js';
export type {
  CallOptions,
  CudaLayerHandle,
  EngineDrivenInfo,
  HelloInfo,
  InstanceIdentity,
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
} from './client/types.js';
export type {
  CacheServerConfig,
  EngineIdentity,
  FreeLookupLocksRequest,
  InstanceStatus,
  L1Config,
  RegisterKvCacheRequest,
  ServerStatus,
  TracingConfig,
} from './create-cache-server.js';
export { CacheServer, createCacheServer } from './create-cache-server.js';
export type { FakeEngineOptions, FakeRequestReport } from './engine/fake-engine.js';
export { FakeEngine, fakePrompt } from './engine/fake-engine.js';
export { chunkBytes, DTYPE_BYTES, layerBytes } from './engine/layout.js';
export type { KvmpErrorCode } from './errors.js';
export { KvmpServerError } from './errors.js';
export type {
  CopyResult,
  GpuWorkerLike,
  HostChunkRef,
  KvDtype,
  KvLayoutSpec,
  KvMemory,
  RetrievePlan,
  StorePlan,
} from './gpu/contract.js';
export type { HttpAnswer, HttpServerOptions, KvmpHttpServer } from './http/http-server.js';
export { startHttpServer } from './http/http-server.js';
export { CHAIN_START_LABEL, ChunkHasher, HASH_BYTES, toHex } from './keys/chunk-hasher.js';
export { HashChainCache } from './keys/hash-chain-cache.js';
export type { ObjectKey } from './keys/object-key.js';
export { kvRank, objectKey } from './keys/object-key.js';
export type { TokenIds } from './keys/tokens.js';
export type { L1Object, L1Options, L1Stats, ReadLease, WriteOutcome } from './l1/l1-store.js';
export { L1Store, MAX_READ_LOCK_COUNT } from './l1/l1-store.js';
export { MemoryPool } from './l1/memory-pool.js';
export type { LookupRequest } from './ops/lookup.js';
export type { RetrieveRequest, RetrieveResult, StoreRequest, StoreResult } from './ops/transfer.js';
export type { HashPoolOptions } from './pool/hash-pool.js';
export { HashPool } from './pool/hash-pool.js';
export type { RequestTypeCode, RequestTypeName, WireErrorCode, WireReply } from './wire/protocol.js';
export {
  CUDA_IPC_HANDLE_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  RequestType,
  requestTypeName,
} from './wire/protocol.js';
export type { WireStats } from './wire/service.js';
export { WireService } from './wire/service.js';
export type { WireServerOptions } from './wire/start-wire-server.js';
export { startWireServer } from './wire/start-wire-server.js';
export type { WireLogger } from './wire/zmq-server.js';
export { ZmqWireServer } from './wire/zmq-server.js';
