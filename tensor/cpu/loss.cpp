// CPU cross-entropy from logits, forward and backward, one row (sample) at a time.
//
//   z [N, C] logits, t_i the target class of row i, w_c class weights (1 without), e label smoothing
//   m = max_c z_c,  log s = log sum_c exp(z_c - m),  log p_c = (z_c - m) - log s     (m keeps exp finite)
//   W = sum_c w_c,  S = sum_c w_c (z_c - m)
//   forward   loss_i = (1 - e) w_t (log s - (z_t - m)) + (e / C) (W log s - S)
//             (the second term is sum_c w_c (-log p_c) gathered from W and S: both parts are >= 0, so
//             nothing cancels)
//   backward  dz_c = g_i (p_c ((1 - e) w_t + e W / C) - (1 - e) w_t [c = t] - e w_c / C)
//
// The smoothing sums are skipped when e = 0, so a logit of -inf (a masked class) gives a finite loss
// instead of 0 * inf.
#include <algorithm>
#include <cmath>

#include "tensor/cpu/kernels.h"
#include "tensor/cpu/loops.h"
#include "tensor/elementwise_math.h"

namespace effnet::cpu {

namespace {

// What one row needs for both passes.
template <class T>
struct RowStats {
  T max;             // m
  T log_sum;         // log s
  T weight_sum;      // W
  T weighted_shift;  // S
};

template <class T>
RowStats<T> row_stats(const T* z, const T* weight, int64_t classes, bool smoothing) {
  RowStats<T> r{z[0], 0, 0, 0};
  for (int64_t c = 1; c < classes; ++c) r.max = std::max(r.max, z[c]);
  T sum = 0;
  for (int64_t c = 0; c < classes; ++c) sum += math::exp(z[c] - r.max);
  r.log_sum = math::log(sum);
  if (smoothing) {
    for (int64_t c = 0; c < classes; ++c) {
      const T w = weight ? weight[c] : T(1);
      r.weight_sum += w;
      r.weighted_shift += w * (z[c] - r.max);
    }
  }
  return r;
}

struct Problem {
  int64_t rows, classes;
};

Problem problem_of(const Tensor& logits, const Tensor& targets, const Tensor& weight, const char* kernel) {
  EFFNET_CHECK(logits.dim() == 2 && logits.is_contiguous() && targets.is_contiguous() &&
                   targets.dtype() == kInt64 && targets.numel() == logits.size(0) &&
                   (!weight.defined() || (weight.is_contiguous() && weight.numel() == logits.size(1))),
               kernel, ": expected contiguous logits [N, C], int64 targets [N] and weight [C], got ",
               logits.str(), ", ", targets.str(), ", ", weight.defined() ? weight.str() : "no weight");
  return {logits.size(0), logits.size(1)};
}

}  // namespace

void cross_entropy(const Tensor& logits, const Tensor& targets, const Tensor& weight, double smoothing,
                   const Tensor& loss, const Tensor& target_weight) {
  const Problem p = problem_of(logits, targets, weight, "cpu cross_entropy");
  with_floating_type(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* z = logits.data<T>();
    const int64_t* t = targets.data<int64_t>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    T* out = loss.data<T>();
    T* out_weight = target_weight.data<T>();
    const T e = static_cast<T>(smoothing);
    const bool smooth = smoothing > 0;
#pragma omp parallel for schedule(static) if (p.rows * p.classes > 2 * kChunk)
    for (int64_t i = 0; i < p.rows; ++i) {
      const T* zr = z + i * p.classes;
      const RowStats<T> r = row_stats(zr, w, p.classes, smooth);
      const T w_target = w ? w[t[i]] : T(1);
      T value = (T(1) - e) * w_target * (r.log_sum - (zr[t[i]] - r.max));
      if (smooth) value += e / static_cast<T>(p.classes) * (r.weight_sum * r.log_sum - r.weighted_shift);
      out[i] = value;
      out_weight[i] = w_target;
    }
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& weight,
                            double smoothing, const Tensor& grad_loss, const Tensor& grad_logits) {
  const Problem p = problem_of(logits, targets, weight, "cpu cross_entropy_backward");
  with_floating_type(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* z = logits.data<T>();
    const int64_t* t = targets.data<int64_t>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* g = grad_loss.data<T>();
    T* gz = grad_logits.data<T>();
    const T e = static_cast<T>(smoothing);
    const T e_per_class = e / static_cast<T>(p.classes);
    const bool smooth = smoothing > 0;
#pragma omp parallel for schedule(static) if (p.rows * p.classes > 2 * kChunk)
    for (int64_t i = 0; i < p.rows; ++i) {
      const T* zr = z + i * p.classes;
      T* gr = gz + i * p.classes;
      const RowStats<T> r = row_stats(zr, w, p.classes, smooth);
      const T target_term = (T(1) - e) * (w ? w[t[i]] : T(1));
      const T p_coefficient = target_term + e_per_class * r.weight_sum;
      for (int64_t c = 0; c < p.classes; ++c) {
        const T prob = math::exp((zr[c] - r.max) - r.log_sum);
        T d = prob * p_coefficient - (c == t[i] ? target_term : T(0));
        if (smooth) d -= e_per_class * (w ? w[c] : T(1));
        gr[c] = g[i] * d;
      }
    }
  });
}

}  // namespace effnet::cpu
