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
