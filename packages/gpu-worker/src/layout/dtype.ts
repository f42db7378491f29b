import type { KvDtype } from '../api.js';

/** Bytes per element. Copies are dtype-agnostic byte moves; the dtype only sizes rows. */
export const DTYPE_BYTES: Readonly<Record<KvDtype, number>> = {
  fp32: 4,
  fp16: 2,
  bf16: 2,
  fp8_e4m3: 1,
  fp8_e5m2: 1,
  int8: 1,
  uint8: 1,
};

export function isKvDtype(value: unknown): value is KvDtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}
