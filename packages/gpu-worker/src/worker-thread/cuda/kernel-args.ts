/**
 * Packs `struct KvmpCopyArgs` (kernels/kv_copy.cu) for a by-value launch. Offsets follow the
 * x86-64/CUDA ABI for that struct; a test checks the total against the PTX parameter size.
 */
export const MAX_LAYERS_PER_LAUNCH = 160;
export const MAX_BLOCKS_PER_CHUNK = 512;
export const ARGS_BYTES = 3368;

const OFF_STAGING = 0;
const OFF_LAYERS = 8;
const OFF_INTS = OFF_LAYERS + 8 * MAX_LAYERS_PER_LAUNCH; // 1288
const OFF_BLOCK_IDS = OFF_INTS + 8 * 4; // 1320

export interface CopyLaunch {
  readonly staging: bigint;
  /** Device pointers of the layers in this launch (≤ MAX_LAYERS_PER_LAUNCH). */
  readonly layers: readonly bigint[];
  readonly layerBase: number;
  readonly totalLayers: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly rowUnits: number;
  readonly chunkTokens: number;
  readonly skipTokens: number;
  /** The chunk's block ids (≤ MAX_BLOCKS_PER_CHUNK). */
  readonly blockIds: Int32Array;
}

/** Packs into `out` (≥ ARGS_BYTES) and returns exactly the struct's bytes: the launch passes their length as the buffer size. */
export function packCopyArgs(launch: CopyLaunch, scratch = new Uint8Array(ARGS_BYTES)): Uint8Array {
  const out = scratch.subarray(0, ARGS_BYTES);
  if (launch.layers.length > MAX_LAYERS_PER_LAUNCH)
    throw new RangeError(`at most ${MAX_LAYERS_PER_LAUNCH} layers per launch`);
  if (launch.blockIds.length > MAX_BLOCKS_PER_CHUNK)
    throw new RangeError(`at most ${MAX_BLOCKS_PER_CHUNK} blocks per chunk`);
  out.fill(0);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setBigUint64(OFF_STAGING, launch.staging, true);
  launch.layers.forEach((ptr, i) => {
    view.setBigUint64(OFF_LAYERS + 8 * i, ptr, true);
  });
  const ints = [
    launch.layerBase,
    launch.layers.length,
    launch.totalLayers,
    launch.numBlocks,
    launch.blockSize,
    launch.rowUnits,
    launch.chunkTokens,
    launch.skipTokens,
  ];
  ints.forEach((v, i) => {
    view.setInt32(OFF_INTS + 4 * i, v, true);
  });
  launch.blockIds.forEach((id, i) => {
    view.setInt32(OFF_BLOCK_IDS + 4 * i, id, true);
  });
  return out;
}

/** Widest copy unit (16, 4 or 1 bytes) dividing the row and every address involved. */
export function copyUnit(rowBytes: number, addresses: readonly bigint[]): 16 | 4 | 1 {
  for (const unit of [16, 4] as const) {
    if (rowBytes % unit === 0 && addresses.every((a) => a % BigInt(unit) === 0n)) return unit;
  }
  return 1;
}

export const KERNEL_SUFFIX = { 16: 'u128', 4: 'u32', 1: 'u8' } as const;
