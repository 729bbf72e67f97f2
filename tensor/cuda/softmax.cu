// Softmax and log-softmax along one dim of contiguous tensors, forward and backward.
//
//   x viewed as [outer, D, inner]: a row is the D elements x[o, :, i], D apart by `inner`
//   m = max_d x,  s = sum_d e^(x - m)           (subtracting m keeps e^ from overflowing)
//   softmax      y = e^(x - m) / s              grad_x = y * (grad_y - sum_d grad_y * y)
//   log-softmax  y = x - m - log s              grad_x = grad_y - e^y * sum_d grad_y
//
// inner == 1 (the last dim, the usual case): rows are contiguous, and a warp (D <= 1024) or a block
// (longer rows) walks each one, so loads are coalesced; the max and the sums are combined with shuffles.
// inner > 1: a thread per (o, i) walks its row alone; neighbouring threads read neighbouring i, which is
// coalesced too.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/cuda/launch.cuh"
#include "tensor/elementwise_math.h"

namespace effnet::cuda {
namespace {

constexpr int64_t kMaxWarpRow = 1024;  // longer rows get a whole block
constexpr int kRowBlockThreads = 512;

// The combination of `value` over the threads sharing a row, in every one of them.
template <bool kWarp, class T, class Combine>
__device__ __forceinline__ T row_all_reduce(T value, Combine combine, T* shared) {
  if constexpr (kWarp) {
    return warp_all_reduce(value, combine);
  } else {
    return block_reduce(value, combine, shared);
  }
}

// Rows of `D` contiguous elements; a warp per row (kWarp) or a block per row.
struct RowSplit {
  int lane, width;
  int64_t first, stride;
  template <bool kWarp>
  __device__ static RowSplit make() {
    if constexpr (kWarp) {
      const int64_t warps = blockDim.x / kWarpSize;
      return {static_cast<int>(threadIdx.x % kWarpSize), kWarpSize,
              int64_t{blockIdx.x} * warps + threadIdx.x / kWarpSize, int64_t{gridDim.x} * warps};
    } else {
      return {static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), int64_t{blockIdx.x},
              int64_t{gridDim.x}};
    }
  }
};

template <bool kWarp, bool kLog, class T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t D) {
  __shared__ T shared[kWarpSize + 1];
  const RowSplit split = RowSplit::make<kWarp>();
  for (int64_t row = split.first; row < rows; row += split.stride) {
    const T* xr = x + row * D;
    T* yr = y + row * D;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t d = split.lane; d < D; d += split.width) m = Max{}(m, xr[d]);
    m = row_all_reduce<kWarp>(m, Max{}, shared);
    T s = 0;
    for (int64_t d = split.lane; d < D; d += split.width) s += math::exp(xr[d] - m);
    s = row_all_reduce<kWarp>(s, Sum{}, shared);
    if constexpr (kLog) {
      // (x - m) - log s, not x - (m + log s): the sum would round log s to the spacing of m (0.001 at 1e4).
      const T log_s = math::log(s);
      for (int64_t d = split.lane; d < D; d += split.width) yr[d] = (xr[d] - m) - log_s;
    } else {
      const T inv = T(1) / s;
      for (int64_t d = split.lane; d < D; d += split.width) yr[d] = math::exp(xr[d] - m) * inv;
    }
  }
}

template <bool kWarp, bool kLog, class T>
__global__ void softmax_backward_rows_kernel(const T* y, const T* gy, T* gx, int64_t rows, int64_t D) {
  __shared__ T shared[kWarpSize + 1];
  const RowSplit split = RowSplit::make<kWarp>();
  for (int64_t row = split.first; row < rows; row += split.stride) {
    const T* yr = y + row * D;
    const T* gyr = gy + row * D;
    T* gxr = gx + row * D;
    T dot = 0;
    for (int64_t d = split.lane; d < D; d += split.width) dot += kLog ? gyr[d] : gyr[d] * yr[d];
    dot = row_all_reduce<kWarp>(dot, Sum{}, shared);
    for (int64_t d = split.lane; d < D; d += split.width)
      gxr[d] = kLog ? gyr[d] - math::exp(yr[d]) * dot : yr[d] * (gyr[d] - dot);
  }
}

// A thread per (o, i): its row starts at o * D * inner + i and steps by inner.
template <bool kLog, class T>
__global__ void __launch_bounds__(kThreads)
    softmax_columns_kernel(const T* x, T* y, int64_t outer, int64_t D, int64_t inner) {
  const int64_t n = outer * inner, grid_stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += grid_stride) {
    const int64_t o = i / inner;
    const int64_t base = o * D * inner + (i - o * inner);
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t d = 0; d < D; ++d) m = Max{}(m, x[base + d * inner]);
    T s = 0;
    for (int64_t d = 0; d < D; ++d) s += math::exp(x[base + d * inner] - m);
    if constexpr (kLog) {
      const T log_s = math::log(s);
      for (int64_t d = 0; d < D; ++d) y[base + d * inner] = (x[base + d * inner] - m) - log_s;
    } else {
      const T inv = T(1) / s;
      for (int64_t d = 0; d < D; ++d) y[base + d * inner] = math::exp(x[base + d * inner] - m) * inv;
    }
  }
}

template <bool kLog, class T>
__global__ void __launch_bounds__(kThreads)
    softmax_backward_columns_kernel(const T* y, const T* gy, T* gx, int64_t outer, int64_t D, int64_t inner) {
  const int64_t n = outer * inner, grid_stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += grid_stride) {
    const int64_t o = i / inner;
    const int64_t base = o * D * inner + (i - o * inner);
    T dot = 0;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = base + d * inner;
      dot += kLog ? gy[k] : gy[k] * y[k];
    }
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = base + d * inner;
      gx[k] = kLog ? gy[k] - math::exp(y[k]) * dot : y[k] * (gy[k] - dot);
    }
  }
}

struct RowsView {
  int64_t outer = 1, D = 1, inner = 1;
};

RowsView view_rows(const Tensor& x, int64_t dim) {
  const int64_t d0 = normalize_dim("softmax", dim, x.dim());
  RowsView v;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < d0) v.outer *= x.size(d);
    else if (d == d0) v.D = x.size(d);
    else v.inner *= x.size(d);
  }
  return v;
}

// Picks the kernel family and its launch shape: rows_launch(kWarp, grid, block) when inner == 1, else
// columns_launch(grid, block).
template <class RowsLaunch, class ColumnsLaunch>
void launch(const Context& ctx, const RowsView& v, RowsLaunch rows_launch, ColumnsLaunch columns_launch) {
  const int64_t cap = int64_t{ctx.properties.multiProcessorCount} * 32;
  if (v.inner == 1) {
    const int64_t rows = v.outer;
    if (v.D <= kMaxWarpRow) {
      const int64_t warps_per_block = kThreads / kWarpSize;
      const auto grid = static_cast<unsigned>(std::min((rows + warps_per_block - 1) / warps_per_block, cap));
      rows_launch(std::true_type{}, grid, kThreads);
    } else {
      rows_launch(std::false_type{}, static_cast<unsigned>(std::min(rows, cap)), kRowBlockThreads);
    }
  } else {
    columns_launch(grid_for(v.outer * v.inner, ctx), kThreads);
  }
  EFFNET_CUDA_CHECK_LAUNCH();
}

}  // namespace

void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  if (x.numel() == 0) return;
  EFFNET_CHECK(x.is_contiguous() && out.is_contiguous() && x.shape() == out.shape() &&
                   x.dtype() == out.dtype(),
               "cuda softmax: expected contiguous x and out of one shape and dtype, got ", x.str(), " -> ",
               out.str());
  const RowsView v = view_rows(x, dim);
  const int device = x.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  with_floating_type(x.dtype(), "cuda softmax", [&](auto zero) {
    using T = decltype(zero);
    const auto* px = static_cast<const T*>(x.data_ptr());
    auto* py = static_cast<T*>(out.data_ptr());
    cudaStream_t stream = ctx.stream;
    const int64_t o = v.outer, d = v.D, i = v.inner;
    auto rows_launch = [&](auto warp, unsigned grid, unsigned block) {
      constexpr bool kWarp = decltype(warp)::value;
      if (log) softmax_rows_kernel<kWarp, true><<<grid, block, 0, stream>>>(px, py, o, d);
      else softmax_rows_kernel<kWarp, false><<<grid, block, 0, stream>>>(px, py, o, d);
    };
    auto columns_launch = [&](unsigned grid, unsigned block) {
      if (log) softmax_columns_kernel<true><<<grid, block, 0, stream>>>(px, py, o, d, i);
      else softmax_columns_kernel<false><<<grid, block, 0, stream>>>(px, py, o, d, i);
    };
    launch(ctx, v, rows_launch, columns_launch);
  });
}

void softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x) {
  if (y.numel() == 0) return;
  auto like_y = [&](const Tensor& t) {
    return t.is_contiguous() && t.shape() == y.shape() && t.dtype() == y.dtype();
  };
  EFFNET_CHECK(like_y(y) && like_y(grad_y) && like_y(grad_x),
               "cuda softmax_backward: expected contiguous tensors of one shape and dtype, got ", y.str(),
               ", ", grad_y.str(), " -> ", grad_x.str());
  const RowsView v = view_rows(y, dim);
  const int device = y.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  with_floating_type(y.dtype(), "cuda softmax_backward", [&](auto zero) {
    using T = decltype(zero);
    const auto* py = static_cast<const T*>(y.data_ptr());
    const auto* pgy = static_cast<const T*>(grad_y.data_ptr());
    auto* pgx = static_cast<T*>(grad_x.data_ptr());
    cudaStream_t stream = ctx.stream;
    const int64_t o = v.outer, d = v.D, i = v.inner;
    auto rows_launch = [&](auto warp, unsigned grid, unsigned block) {
      constexpr bool kWarp = decltype(warp)::value;
      if (log) softmax_backward_rows_kernel<kWarp, true><<<grid, block, 0, stream>>>(py, pgy, pgx, o, d);
      else softmax_backward_rows_kernel<kWarp, false><<<grid, block, 0, stream>>>(py, pgy, pgx, o, d);
    };
    auto columns_launch = [&](unsigned grid, unsigned block) {
      if (log) softmax_backward_columns_kernel<true><<<grid, block, 0, stream>>>(py, pgy, pgx, o, d, i);
      else softmax_backward_columns_kernel<false><<<grid, block, 0, stream>>>(py, pgy, pgx, o, d, i);
    };
    launch(ctx, v, rows_launch, columns_launch);
  });
}

}  // namespace effnet::cuda
