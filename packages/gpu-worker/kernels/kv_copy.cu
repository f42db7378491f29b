// Paged-KV gather/scatter kernels for kvmp's GPU worker (compiled to PTX by scripts/build-ptx.sh).
//
// Both supported engine layouts are, per layer, [kv, num_blocks, block_size, row] row-major:
//   vLLM flash-attn  [2, num_blocks, block_size, num_heads, head_size]   kv = 2, row = heads*head_size
//   vLLM MLA         [num_blocks, block_size, head_dim]                  kv = 1, row = head_dim
// kvmp's chunk staging buffer is [kv, total_layers, chunk_tokens, row]. So a paged block's tokens
// for one (kv, layer) are one contiguous run on both sides: each CTA copies one such run.
//
// Grid: x = block index within the chunk, y = layer within this launch, z = kv (2 flash-attn,
// 1 MLA). Arguments travel by value in one struct (block ids and layer pointers included), so a
// launch needs no device-side staging of block tables and no H2D copy before it.
// Copies are dtype-agnostic: the host picks the widest unit (16, 4 or 1 bytes) that divides the
// row and all pointers.

#define KVMP_MAX_LAYERS 160
#define KVMP_MAX_BLOCKS 512

struct KvmpCopyArgs {
  unsigned long long staging;                  // device pointer: this chunk's staging buffer
  unsigned long long layers[KVMP_MAX_LAYERS];  // device pointers of the layers in this launch
  int layer_base;    // model index of layers[0] (staging layer index)
  int num_layers;    // layers in this launch (== gridDim.y)
  int total_layers;  // layers in the model (staging stride)
  int num_blocks;    // engine blocks per layer (kv stride)
  int block_size;    // tokens per engine block
  int row_units;     // row size in copy units
  int chunk_tokens;  // tokens per chunk (== gridDim.x * block_size)
  int skip_tokens;   // scatter only: chunk tokens at the start to leave untouched
  int block_ids[KVMP_MAX_BLOCKS];  // engine block id of each block of the chunk
};

template <typename Unit, bool kGather>
__device__ __forceinline__ void kvmp_copy_block(const KvmpCopyArgs& a) {
  const int i = blockIdx.x;
  const int l = blockIdx.y;
  const int kv = blockIdx.z;
  const int first = i * a.block_size;  // chunk token of this block's first token
  int from = 0;                        // first token of the block to copy
  if (!kGather) {
    if (first + a.block_size <= a.skip_tokens) return;
    from = a.skip_tokens > first ? a.skip_tokens - first : 0;
  }
  const long long row = a.row_units;
  Unit* paged = reinterpret_cast<Unit*>(a.layers[l]) +
                (static_cast<long long>(kv) * a.num_blocks + a.block_ids[i]) * a.block_size * row;
  Unit* staged = reinterpret_cast<Unit*>(a.staging) +
                 ((static_cast<long long>(kv) * a.total_layers + a.layer_base + l) * a.chunk_tokens + first) * row;
  const long long end = static_cast<long long>(a.block_size) * row;
  for (long long u = from * row + threadIdx.x; u < end; u += blockDim.x) {
    if (kGather) {
      staged[u] = paged[u];
    } else {
      paged[u] = staged[u];
    }
  }
}

#define KVMP_KERNELS(suffix, Unit)                                                                \
  extern "C" __global__ void kvmp_gather_##suffix(const __grid_constant__ KvmpCopyArgs args) {    \
    kvmp_copy_block<Unit, true>(args);                                                            \
  }                                                                                               \
  extern "C" __global__ void kvmp_scatter_##suffix(const __grid_constant__ KvmpCopyArgs args) {   \
    kvmp_copy_block<Unit, false>(args);                                                           \
  }

KVMP_KERNELS(u128, uint4)
KVMP_KERNELS(u32, unsigned int)
KVMP_KERNELS(u8, unsigned char)
