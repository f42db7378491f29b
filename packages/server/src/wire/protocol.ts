/**
 * The kvmp wire protocol: constants shared by the server and every client. See docs/protocol.md.
 *
 * Transport: ZeroMQ ROUTER (server) / DEALER (client). A request is exactly three frames,
 * `[request id][request type][payload]`; the reply to it is `[request id][request type][reply]`,
 * where the first two frames are the request's frames echoed byte for byte (so a client can
 * match a reply even to a request whose id it could not encode properly). Every request gets
 * exactly one reply, including malformed ones.
 */

/** Bumped on any incompatible change; `HELLO` refuses a client that speaks another version. */
export const PROTOCOL_VERSION = 1;

/**
 * Request type codes (msgpack unsigned ints). Wire-significant: never reorder or reuse a code;
 * new types get new codes.
 */
export const RequestType = {
  HELLO: 0,
  REGISTER_KV_CACHE: 1,
  UNREGISTER_KV_CACHE: 2,
  STORE: 3,
  RETRIEVE: 4,
  LOOKUP: 5,
  QUERY_PREFETCH_STATUS: 6,
  FREE_LOOKUP_LOCKS: 7,
  END_SESSION: 8,
  REGISTER_ENGINE_DRIVEN: 9,
  PREPARE_STORE: 10,
  COMMIT_STORE: 11,
  RETRIEVE_DATA: 12,
  CLEAR: 13,
  GET_CHUNK_SIZE: 14,
  PING: 15,
  NOOP: 16,
} as const;

export type RequestTypeName = keyof typeof RequestType;
export type RequestTypeCode = (typeof RequestType)[RequestTypeName];

const NAMES: readonly RequestTypeName[] = (() => {
  const names: RequestTypeName[] = [];
  for (const [name, code] of Object.entries(RequestType)) names[code] = name as RequestTypeName;
  return names;
})();

/** The name of a request type code, or `undefined` when the code is not one. */
export function requestTypeName(code: unknown): RequestTypeName | undefined {
  return typeof code === 'number' && Number.isInteger(code) ? NAMES[code] : undefined;
}

/**
 * Error codes carried in error replies. The first group comes from the wire layer, the second
 * from the cache server core (`KvmpServerError.code`).
 */
export type WireErrorCode =
  /** A frame is not valid msgpack (or has trailing bytes). */
  | 'MALFORMED'
  /** The request type frame is not a known request type. */
  | 'UNKNOWN_TYPE'
  /** Not exactly three frames, or the payload is not a map. */
  | 'BAD_ARITY'
  /** A field is missing, unknown, of the wrong type, or out of range. */
  | 'BAD_FIELD'
  /** The message is larger than the server's per-message limit. */
  | 'FRAME_TOO_LARGE'
  /** `HELLO` with another protocol version. */
  | 'VERSION_MISMATCH'
  /** A session (request id) this server has no state for. */
  | 'UNKNOWN_SESSION'
  /** A `COMMIT_STORE` handle that was never issued, was already committed, or expired. */
  | 'UNKNOWN_HANDLE'
  /** The operation is not available on this server (e.g. CUDA IPC on a cpu server). */
  | 'UNSUPPORTED'
  /** The engine-driven staging area stayed full; retry later. */
  | 'BUSY'
  /** Unexpected server failure (a bug); the message says no more than the operation. */
  | 'INTERNAL'
  // --- from the core
  | 'INVALID_ARGUMENT'
  | 'BAD_RANGE'
  | 'UNKNOWN_INSTANCE'
  | 'BAD_LAYOUT'
  | 'BAD_BLOCK_IDS'
  | 'CLOSED';

/** Raw CUDA IPC memory and event handles (`cudaIpcMemHandle_t`, `cudaIpcEventHandle_t`) are 64 bytes. */
export const CUDA_IPC_HANDLE_BYTES = 64;

/** Default per-message size limit (bytes of all frames of one request). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The reply payload: a msgpack map. */
export type WireReply<T = unknown> =
  | { readonly ok: true; readonly result: T }
  | { readonly ok: false; readonly error: { readonly code: WireErrorCode; readonly message: string } };
