/**
 * Typed errors. Bad input never takes the server down: every public operation validates its
 * arguments and throws a {@link KvmpServerError} with a stable `code` before touching any state.
 * Messages never contain token ids or KV bytes.
 */
export type KvmpErrorCode =
  /** An argument is missing, of the wrong type, or out of range. */
  | 'INVALID_ARGUMENT'
  /** A token range is not chunk-aligned or exceeds the token list. */
  | 'BAD_RANGE'
  /** No KV cache is registered under this instance id. */
  | 'UNKNOWN_INSTANCE'
  /** The KV layout cannot be served (chunk size not a multiple of the block size, slot too large...). */
  | 'BAD_LAYOUT'
  /** Too few engine block ids for the op's tokens, or a block id out of range. */
  | 'BAD_BLOCK_IDS'
  /** The server is closing or closed. */
  | 'CLOSED';

export class KvmpServerError extends Error {
  readonly code: KvmpErrorCode;

  constructor(code: KvmpErrorCode, message: string) {
    super(message);
    this.name = 'KvmpServerError';
    this.code = code;
  }
}

export function invalid(message: string): KvmpServerError {
  return new KvmpServerError('INVALID_ARGUMENT', message);
}
