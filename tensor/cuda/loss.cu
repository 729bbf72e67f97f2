// CUDA cross-entropy from logits, forward and backward: a warp per row (sample), lanes striding over the
// C classes, so loads are coalesced and the row's max and sums combine with shuffles.
//
//   z [N, C] logits, t_i the target class of row i, w_c class weights (1 without), e label smoothing
//   m = max_c z_c,  log s = log sum_c exp(z_c - m),  log p_c = (z_c - m) - log s     (m keeps exp finite)
//   W = sum_c w_c,  S = sum_c w_c (z_c - m)
//   forward   loss_i = (1 - e) w_t (log s - (z_t - m)) + (e / C) (W log s - S)
//   backward  dz_c = g_i (p_c ((1 - e) w_t + e W / C) - (1 - e) w_t [c = t] - e w_c / C)
//
// The same formulas as tensor/cpu/loss.cpp; the smoothing sums are skipped when e = 0. The backward
// recomputes m and log s from the logits instead of saving them: a row is C = 18 values here, and the
// backward reads it anyway. A warp per row wastes lanes for C < 32, but the whole loss is a few
// microseconds at N = 32; wide rows (ImageNet's 1000) simply loop.
#include <algorithm>
#include <limits>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/cuda/launch.cuh"
#include "tensor/elementwise_math.h"

namespace effnet::cuda {
namespace {

constexpr int kWarpsPerBlock = kThreads / kWarpSize;

template <class T>
struct RowStats {
  T max;             // m
  T log_sum;         // log s
  T weight_sum;      // W
  T weighted_shift;  // S
};

// Every lane of the warp calls this for the same row and gets the same stats.
template <class T>
__device__ RowStats<T> row_stats(const T* z, const T* weight, int64_t classes, bool smoothing, int lane) {
  RowStats<T> r{-std::numeric_limits<T>::infinity(), 0, 0, 0};
  for (int64_t c = lane; c < classes; c += kWarpSize) r.max = Max{}(r.max, z[c]);
  r.max = warp_all_reduce(r.max, Max{});
  T sum = 0;
  for (int64_t c = lane; c < classes; c += kWarpSize) {
    sum += math::exp(z[c] - r.max);
    if (smoothing) {
      const T w = weight ? weight[c] : T(1);
      r.weight_sum += w;
      r.weighted_shift += w * (z[c] - r.max);
    }
  }
  r.log_sum = math::log(warp_all_reduce(sum, Sum{}));
  if (smoothing) {
    r.weight_sum = warp_all_reduce(r.weight_sum, Sum{});
    r.weighted_shift = warp_all_reduce(r.weighted_shift, Sum{});
  }
  return r;
}

// The rows of warp `first`, `first + stride`, ...: the bound is the same for every lane of a warp, so
// whole warps enter and leave the loop together, as the shuffles need.
struct WarpRows {
  int lane;
  int64_t first, stride;
  __device__ static WarpRows make() {
    return {static_cast<int>(threadIdx.x % kWarpSize),
            int64_t{blockIdx.x} * kWarpsPerBlock + threadIdx.x / kWarpSize,
            int64_t{gridDim.x} * kWarpsPerBlock};
  }
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_kernel(const T* z, const int64_t* targets, const T* weight, T smoothing, int64_t rows,
                         int64_t classes, T* loss, T* target_weight) {
  const WarpRows split = WarpRows::make();
  const bool smooth = smoothing > T(0);
  for (int64_t i = split.first; i < rows; i += split.stride) {
    const T* zr = z + i * classes;
    const RowStats<T> r = row_stats(zr, weight, classes, smooth, split.lane);
    if (split.lane == 0) {
      const int64_t t = targets[i];
      const T w_target = weight ? weight[t] : T(1);
      T value = (T(1) - smoothing) * w_target * (r.log_sum - (zr[t] - r.max));
      if (smooth)
        value += smoothing / static_cast<T>(classes) * (r.weight_sum * r.log_sum - r.weighted_shift);
      loss[i] = value;
      target_weight[i] = w_target;
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_backward_kernel(const T* z, const int64_t* targets, const T* weight, T smoothing,
                                  const T* grad_loss, int64_t rows, int64_t classes, T* grad_z) {
  const WarpRows split = WarpRows::make();
  const bool smooth = smoothing > T(0);
  const T e_per_class = smoothing / static_cast<T>(classes);
  for (int64_t i = split.first; i < rows; i += split.stride) {
    const T* zr = z + i * classes;
    T* gr = grad_z + i * classes;
    const RowStats<T> r = row_stats(zr, weight, classes, smooth, split.lane);
    const int64_t t = targets[i];
    const T target_term = (T(1) - smoothing) * (weight ? weight[t] : T(1));
    const T p_coefficient = target_term + e_per_class * r.weight_sum;
    const T g = grad_loss[i];
    for (int64_t c = split.lane; c < classes; c += kWarpSize) {
      const T prob = math::exp((zr[c] - r.max) - r.log_sum);
      T d = prob * p_coefficient - (c == t ? target_term : T(0));
      if (smooth) d -= e_per_class * (weight ? weight[c] : T(1));
      gr[c] = g * d;
    }
  }
}

void check_problem(const Tensor& logits, const Tensor& targets, const Tensor& weight, const char* kernel) {
  EFFNET_CHECK(logits.dim() == 2 && logits.is_contiguous() && targets.is_contiguous() &&
                   targets.dtype() == kInt64 && targets.numel() == logits.size(0) &&
                   (!weight.defined() || (weight.is_contiguous() && weight.numel() == logits.size(1))),
               kernel, ": expected contiguous logits [N, C], int64 targets [N] and weight [C], got ",
               logits.str(), ", ", targets.str(), ", ", weight.defined() ? weight.str() : "no weight");
}

unsigned grid_for_rows(int64_t rows, const Context& ctx) {
  const int64_t cap = int64_t{ctx.properties.multiProcessorCount} * 32;
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, cap)));
}

}  // namespace

void cross_entropy(const Tensor& logits, const Tensor& targets, const Tensor& weight, double smoothing,
                   const Tensor& loss, const Tensor& target_weight) {
  check_problem(logits, targets, weight, "cuda cross_entropy");
  const int64_t rows = logits.size(0), classes = logits.size(1);
  if (rows == 0) return;
  const int device = logits.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  with_floating_type(logits.dtype(), "cuda cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_kernel<T><<<grid_for_rows(rows, ctx), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(logits.data_ptr()), static_cast<const int64_t*>(targets.data_ptr()),
        weight.defined() ? static_cast<const T*>(weight.data_ptr()) : nullptr, static_cast<T>(smoothing),
        rows, classes, static_cast<T*>(loss.data_ptr()), static_cast<T*>(target_weight.data_ptr()));
  });
  EFFNET_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& weight,
                            double smoothing, const Tensor& grad_loss, const Tensor& grad_logits) {
  check_problem(logits, targets, weight, "cuda cross_entropy_backward");
  const int64_t rows = logits.size(0), classes = logits.size(1);
  if (rows == 0) return;
  const int device = logits.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  with_floating_type(logits.dtype(), "cuda cross_entropy_backward", [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_backward_kernel<T><<<grid_for_rows(rows, ctx), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(logits.data_ptr()), static_cast<const int64_t*>(targets.data_ptr()),
        weight.defined() ? static_cast<const T*>(weight.data_ptr()) : nullptr, static_cast<T>(smoothing),
        static_cast<const T*>(grad_loss.data_ptr()), rows, classes, static_cast<T*>(grad_logits.data_ptr()));
  });
  EFFNET_CUDA_CHECK_LAUNCH();
}

}  // namespace effnet::cuda
