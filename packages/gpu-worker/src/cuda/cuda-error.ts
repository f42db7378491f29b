/** The one message for "this machine has no usable CUDA driver" (the server matches on it to fall back). */
export const NO_CUDA_DRIVER = 'no CUDA driver found';

/** libcuda.so.1 could not be loaded or initialised, or has no device. */
export class CudaUnavailableError extends Error {
  override readonly name = 'CudaUnavailableError';
  constructor(detail: string) {
    super(`${NO_CUDA_DRIVER}: ${detail}`);
  }
}

/** A CUDA driver call returned an error. */
export class CudaError extends Error {
  override readonly name = 'CudaError';
  constructor(
    readonly call: string,
    readonly code: number,
    description: string,
  ) {
    super(`${call} failed: ${description} (CUresult ${code})`);
  }
}

/** True for errors (or their messages, after crossing threads) that mean "no CUDA here". */
export function isCudaUnavailable(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith(NO_CUDA_DRIVER);
}
