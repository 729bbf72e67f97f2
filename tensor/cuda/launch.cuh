// Launch helpers shared by the CUDA kernels: the block size, the grid of a grid-stride loop, strided offsets
// with a fast path for one dim, and warp/block reductions with their combines.
//
//   n      elements (or rows) a grid-stride loop walks
//   warp   32 threads that exchange registers with shuffles; a block's warps meet in shared memory
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "tensor/cuda/context.h"
#include "tensor/indexing.h"

namespace effnet::cuda {

constexpr int kThreads = 256;
constexpr int kWarpSize = 32;
// The block of the per-channel reductions over channels-last tensors (batch norm, the SE gate): a warp
// takes 32 neighbouring channels of one pixel, and 8 rows of threads share a channel's pixels.
constexpr int kTile = 32;  // channels per NHWC block
constexpr int kRows = 8;   // threads per channel in an NHWC block

// Blocks for a grid-stride loop over n items: enough to fill every SM several times over, but not one
// block per item for huge n (launching blocks costs more than looping in them).
inline unsigned grid_for(int64_t n, const Context& ctx, int threads = kThreads) {
  const int64_t wanted = (n + threads - 1) / threads;
  const int64_t cap = int64_t{ctx.properties.multiProcessorCount} * 32;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, cap)));
}

// Splits of `values` that blocks sharing one reduction take when the other grid dimension (`blocks`)
// alone cannot fill the GPU: enough for 4 blocks per SM, each of the `threads` a split has keeping at least
// `per_thread` values, at most 65535 (a grid's y and z limit).
inline int64_t splits_to_fill(int64_t blocks, int64_t values, int64_t threads, int64_t per_thread,
                              const Context& ctx) {
  const int64_t wanted = (int64_t{4} * ctx.properties.multiProcessorCount + blocks - 1) / blocks;
  const int64_t most = std::max<int64_t>(1, values / (threads * per_thread));
  return std::clamp<int64_t>(wanted, 1, std::min<int64_t>(most, 65535));
}

// Elements a thread of an elementwise kernel loads before it computes and stores any of them: one load in
// flight per thread leaves the memory idle most of the time. (Loading first also keeps an in-place op,
// whose output is an input at the same index, right.)
constexpr int kUnroll = 4;

// The grid for for_each_unrolled over n elements.
inline unsigned unrolled_grid_for(int64_t n, const Context& ctx) { return grid_for(n, ctx, kThreads * kUnroll); }

// A grid-stride loop over [0, n) in which each thread loads kUnroll elements, `stride` apart, before it
// stores any: e.load(i) reads element i's inputs, e.store(i, value) computes and writes its output.
// Index is int64_t, or uint32_t where n < 2^31 (then i + kUnroll stride stays below 2^32: stride is at most
// grid_for's cap of 32 blocks of kThreads per SM).
template <class Index, class Element>
__device__ __forceinline__ void for_each_unrolled(Index n, const Element& e) {
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + (kUnroll - 1) * stride < n; i += kUnroll * stride) {
    decltype(e.load(i)) values[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) values[u] = e.load(i + u * stride);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) e.store(i + u * stride, values[u]);
  }
  for (; i < n; i += stride) e.store(i, e.load(i));
}

// The offset of element `linear` of a (coalesced) strided operand; one dim, the common case after
// coalescing, needs no division.
__device__ __forceinline__ int64_t offset_of(const StridedIndex& index, int64_t linear) {
  if (index.ndim == 0) return 0;
  if (index.ndim == 1) return linear * index.strides[0];
  return index.offset(linear);
}

__device__ __forceinline__ float shfl_down(float v, int delta) {
  return __shfl_down_sync(0xffffffffu, v, delta);
}
__device__ __forceinline__ double shfl_down(double v, int delta) {
  return __shfl_down_sync(0xffffffffu, v, delta);
}

// Combines the values of a warp; lane 0 holds the result. Every lane of the warp must call it.
template <class T, class Combine>
__device__ __forceinline__ T warp_reduce(T value, Combine combine) {
  for (int delta = kWarpSize / 2; delta > 0; delta /= 2) value = combine(value, shfl_down(value, delta));
  return value;
}

// warp_reduce's result in every lane of the warp.
template <class T, class Combine>
__device__ __forceinline__ T warp_all_reduce(T value, Combine combine) {
  return __shfl_sync(0xffffffffu, warp_reduce(value, combine), 0);
}

// The combines of the row reductions (softmax.cu, loss.cu).
struct Sum {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

struct Max {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return (a != a || a > b) ? a : b;  // NaN wins, so a row holding NaN gives NaN
  }
};

// Combines one value per thread of a 1-D block (blockDim.x a multiple of 32); every thread gets the result.
// `shared` holds at least 33 T (one per warp and the result); the block may call again with the same
// `shared` right after.
template <class T, class Combine>
__device__ T block_reduce(T value, Combine combine, T* shared) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  value = warp_reduce(value, combine);
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = shared[lane < warps ? lane : 0];
    // Lanes past the last warp repeat warp 0's value; only lane 0's result is used, and it combines
    // each warp's value exactly once.
    for (int delta = kWarpSize / 2; delta > 0; delta /= 2) {
      T other = shfl_down(value, delta);
      if (lane + delta < warps) value = combine(value, other);
    }
    if (lane == 0) shared[kWarpSize] = value;
  }
  __syncthreads();
  value = shared[kWarpSize];
  __syncthreads();
  return value;
}

}  // namespace effnet::cuda
