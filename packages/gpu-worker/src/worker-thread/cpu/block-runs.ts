/**
 * Contiguous copy runs of one chunk, in token units: `[chunkToken, blockToken, tokens]` triples.
 * Within one layer and one of K/V a block's tokens are contiguous on both sides, and so are
 * consecutive block ids, so each run is one memcpy per (kv, layer). `skip` tokens at the start of
 * the chunk are left out (a run may then start inside a block).
 */
export function chunkRuns(
  blockIds: Int32Array,
  first: number,
  count: number,
  blockSize: number,
  skip: number,
): Int32Array {
  const out = new Int32Array(count * 3);
  let n = 0;
  let i = Math.floor(skip / blockSize);
  let from = skip - i * blockSize;
  while (i < count) {
    const b = blockIds[first + i];
    let j = i + 1;
    while (j < count && blockIds[first + j] === b + (j - i)) j++;
    out[n++] = i * blockSize + from;
    out[n++] = b * blockSize + from;
    out[n++] = (j - i) * blockSize - from;
    from = 0;
    i = j;
  }
  return out.subarray(0, n);
}
