// The backward of a per-channel gate y = x gate_nc (squeeze-excite's; tensor/backend.h has the contract):
// grad_x = grad_y gate_nc and grad_gate_nc = sum_{H,W} grad_y x in one pass, where the unfused mul's backward
// writes the product grad_y x to a temporary of x's size and reads it back to sum it.
//
//   T   the dtype; A = compute_t<T> (float32 for 16-bit, else T) holds the products and sums
//   N batch   C channels   HW values per plane (n, c): at (n C + c) HW + k (NCHW), at (n HW + k) C + c (NHWC)
//
//   NCHW  grid (N C): a block per plane walks its HW values, then block_reduce
//   NHWC  grid (ceil(C / 32), N, S), block (32, 8): thread (t, r) takes channel 32 b + t of image n and
//         every 8th pixel from r within split s of the HW pixels, so a warp reads 32 neighbouring channels
//         of one pixel; the 8 partial sums are added in shared memory, written to a [N, C, S] scratch, and
//         a thread per (n, c) adds the S of them, always in the same order (the splits fill the GPU when
//         N C / 32 blocks alone would not: an early EfficientNet stage has few channels and many pixels)
#include <algorithm>
#include <climits>
#include <memory>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/cuda/launch.cuh"
#include "tensor/elementwise_math.h"
#include "tensor/half.h"

namespace effnet::cuda {
namespace {

template <class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kThreads)
    gate_backward_nchw_kernel(int64_t hw, const T* grad_y, const T* x, const T* gate, T* grad_x, T* grad_gate) {
  __shared__ A shared[kWarpSize + 1];
  const int64_t plane = blockIdx.x, base = plane * hw;
  const A scale = static_cast<A>(gate[plane]);
  A sum = 0;
  for (int64_t k = threadIdx.x; k < hw; k += blockDim.x) {
    const A dy = static_cast<A>(grad_y[base + k]);
    grad_x[base + k] = static_cast<T>(dy * scale);
    sum += dy * static_cast<A>(x[base + k]);
  }
  sum = block_reduce(sum, Sum{}, shared);
  if (threadIdx.x == 0) grad_gate[plane] = static_cast<T>(sum);
}

template <class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kTile * kRows)
    gate_backward_nhwc_kernel(int64_t c, int64_t hw, const T* grad_y, const T* x, const T* gate, T* grad_x,
                              A* partial_sums) {
  __shared__ A partial[kRows][kTile];
  const int64_t ch = int64_t{blockIdx.x} * kTile + threadIdx.x, n = blockIdx.y, s = blockIdx.z, splits = gridDim.z;
  const int64_t chunk = (hw + splits - 1) / splits, end = std::min(hw, (s + 1) * chunk);
  A sum = 0;
  if (ch < c) {
    const A scale = static_cast<A>(gate[n * c + ch]);
    for (int64_t k = s * chunk + threadIdx.y; k < end; k += kRows) {
      const int64_t i = (n * hw + k) * c + ch;
      const A dy = static_cast<A>(grad_y[i]);
      grad_x[i] = static_cast<T>(dy * scale);
      sum += dy * static_cast<A>(x[i]);
    }
  }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && ch < c) {
    for (int r = 1; r < kRows; ++r) sum += partial[r][threadIdx.x];
    partial_sums[(n * c + ch) * splits + s] = sum;
  }
}

// grad_gate of each (n, c) (grid-stride): the sum of its S partial sums, in split order.
template <class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kThreads)
    gate_sum_splits_kernel(int64_t planes, int64_t splits, const A* partial_sums, T* grad_gate) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t plane = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; plane < planes; plane += stride) {
    A sum = 0;
    for (int64_t s = 0; s < splits; ++s) sum += partial_sums[plane * splits + s];
    grad_gate[plane] = static_cast<T>(sum);
  }
}

// Splits of the HW pixels for the NHWC kernel: blocks enough to fill the GPU, each thread keeping at least
// 16 pixels.
int64_t nhwc_splits(int64_t n, int64_t c, int64_t hw, const Context& ctx) {
  return splits_to_fill(n * ((c + kTile - 1) / kTile), hw, kRows, 16, ctx);
}

}  // namespace

void channel_gate_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gate, const Tensor& grad_x,
                           const Tensor& grad_gate) {
  const char* op = "cuda channel_gate_backward";
  const MemoryFormat format = x.suggest_memory_format();
  EFFNET_CHECK(x.dim() == 4 && x.is_contiguous(format), op,
               ": expected a dense [N, C, H, W] input (row-major or channels-last), got ", x.str());
  for (const Tensor* t : {&grad_y, &grad_x}) {
    EFFNET_CHECK(t->shape() == x.shape() && t->is_contiguous(format) && t->dtype() == x.dtype(), op, ": ",
                 t->str(), " does not match the input ", x.str(), " (dtype and memory format)");
  }
  const Shape gate_shape{x.size(0), x.size(1), 1, 1};
  for (const Tensor* t : {&gate, &grad_gate}) {
    EFFNET_CHECK(t->shape() == gate_shape && t->is_contiguous() && t->dtype() == x.dtype(), op, ": ", t->str(),
                 " should be a contiguous ", shape_str(gate_shape), " ", x.dtype(), " tensor");
  }
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  if (n * c == 0) return;
  const int device = x.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  if (hw == 0) {
    EFFNET_CUDA_CHECK(cudaMemsetAsync(grad_gate.data_ptr(), 0, static_cast<size_t>(n * c) * element_size(x.dtype()),
                                      ctx.stream));
    return;
  }
  EFFNET_CHECK(format == MemoryFormat::ChannelsLast ? n <= 65535 : n * c <= INT_MAX, op, ": ", x.str(),
               " has more planes than one launch covers");
  with_computable_type(x.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T* dy = static_cast<const T*>(grad_y.data_ptr());
    const T* in = static_cast<const T*>(x.data_ptr());
    const T* g = static_cast<const T*>(gate.data_ptr());
    T* dx = static_cast<T*>(grad_x.data_ptr());
    T* dg = static_cast<T*>(grad_gate.data_ptr());
    if (format == MemoryFormat::ChannelsLast) {
      using A = compute_t<T>;
      const int64_t splits = nhwc_splits(n, c, hw, ctx);
      const std::shared_ptr<Storage> scratch =
          allocate(static_cast<size_t>(n * c * splits) * sizeof(A), Device::cuda(device));
      A* partial_sums = static_cast<A*>(scratch->data());
      const dim3 grid(static_cast<unsigned>((c + kTile - 1) / kTile), static_cast<unsigned>(n),
                      static_cast<unsigned>(splits));
      gate_backward_nhwc_kernel<T><<<grid, dim3(kTile, kRows), 0, ctx.stream>>>(c, hw, dy, in, g, dx, partial_sums);
      EFFNET_CUDA_CHECK_LAUNCH();
      gate_sum_splits_kernel<T><<<grid_for(n * c, ctx), kThreads, 0, ctx.stream>>>(n * c, splits, partial_sums, dg);
    } else {
      gate_backward_nchw_kernel<T><<<static_cast<unsigned>(n * c), kThreads, 0, ctx.stream>>>(hw, dy, in, g, dx, dg);
    }
    EFFNET_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace effnet::cuda
