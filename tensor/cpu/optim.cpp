// CPU optimizer kernels: one multi-tensor step of a parameter group (optim/multi_tensor.h), the global L2
// norm of a tensor list and the clipping multiply. The per-element equations are optim/update_math.h,
// shared with the CUDA kernels; here each parameter is two OpenMP loops at most:
//   1. (AdamP, SGDP, parameters with dim > 1) per row: the sums g.p, g.g, p.p, p.u of the projection test,
//      with u the rule's direction computed from the old state without storing it; then the test itself
//      picks per-row, whole-tensor or no radial coefficients;
//   2. per element: advance the state, step the parameter.
// Sums run in float64 in a fixed order (rows in parallel, each row sequential; norms over fixed chunks),
// so the result does not depend on the number of threads.
#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

#include "optim/multi_tensor.h"
#include "optim/update_math.h"
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/loops.h"
#include "tensor/elementwise_math.h"

namespace effnet::cpu {
namespace {

template <class T>
struct ParamPointers {
  T* param;
  const T* grad;
  std::array<T*, 3> state;

  explicit ParamPointers(const ParamUpdate& u) : param(u.param.data<T>()), grad(u.grad.data<T>()) {
    for (size_t k = 0; k < state.size(); ++k) state[k] = u.state[k].defined() ? u.state[k].data<T>() : nullptr;
  }
  void load_state(int64_t i, T (&s)[3]) const {
    for (int k = 0; k < 3; ++k) s[k] = state[k] != nullptr ? state[k][i] : T(0);
  }
  void store_state(int64_t i, const T (&s)[3]) const {
    for (int k = 0; k < 3; ++k) {
      if (state[k] != nullptr) state[k][i] = s[k];
    }
  }
};

// The projection's outcome for one parameter: a radial coefficient per row (empty: no projection).
struct Radial {
  std::vector<double> per_row;
  int64_t row_length = 1;
};

template <UpdateRule kRule, class T>
Radial projection(const optim_math::Coefficients<T>& c, const Hyperparameters& h, const ParamPointers<T>& ptr,
                  int64_t rows, int64_t row_length) {
  std::vector<optim_math::ProjectionSums> sums(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (rows * row_length > 2 * kChunk)
  for (int64_t r = 0; r < rows; ++r) {
    optim_math::ProjectionSums& row = sums[static_cast<size_t>(r)];
    for (int64_t i = r * row_length; i < (r + 1) * row_length; ++i) {
      T s[3];
      ptr.load_state(i, s);
      const T u = optim_math::advance<kRule>(c, ptr.param[i], ptr.grad[i], s);
      row.add(ptr.grad[i], ptr.param[i], u);
    }
  }
  Radial radial;
  double max_cosine = 0;
  for (const auto& row : sums) {
    max_cosine = optim_math::max_propagating_nan(max_cosine, optim_math::abs_cosine(row, h.eps));
  }
  if (optim_math::nearly_orthogonal(max_cosine, h.delta, row_length)) {
    radial.row_length = row_length;
    for (const auto& row : sums) radial.per_row.push_back(optim_math::radial_coefficient(row, h.eps));
    return radial;
  }
  optim_math::ProjectionSums whole;
  for (const auto& row : sums) whole.add(row);
  if (optim_math::nearly_orthogonal(optim_math::abs_cosine(whole, h.eps), h.delta, rows * row_length)) {
    radial.row_length = rows * row_length;
    radial.per_row.push_back(optim_math::radial_coefficient(whole, h.eps));
  }
  return radial;
}

template <UpdateRule kRule, class T>
void step_param(const MultiTensorStep& step, const ParamUpdate& update) {
  const optim_math::Coefficients<T> c = optim_math::coefficients<T>(step.rule, step.hyper, update);
  const ParamPointers<T> ptr(update);
  const int64_t n = update.param.numel();
  Radial radial;
  if constexpr (projects(kRule)) {
    const int64_t rows = update.param.dim() > 1 ? update.param.size(0) : 0;
    if (rows > 0) radial = projection<kRule>(c, step.hyper, ptr, rows, n / rows);
  }
  const bool projected = !radial.per_row.empty();
  const T decay = projected ? c.projected_decay : c.decay;
#pragma omp parallel for schedule(static) if (n > 2 * kChunk)
  for (int64_t i = 0; i < n; ++i) {
    T s[3];
    ptr.load_state(i, s);
    const T p = ptr.param[i];
    const T u = optim_math::advance<kRule>(c, p, ptr.grad[i], s);
    T direction = u;
    if (projected) {
      const auto r = static_cast<T>(radial.per_row[static_cast<size_t>(i / radial.row_length)]);
      direction = optim_math::project<kRule>(c, p, u, r, s);
    }
    ptr.param[i] = optim_math::apply<kRule>(c, p, direction, decay);
    ptr.store_state(i, s);
  }
}

template <class F>
void with_update_rule(UpdateRule rule, F&& f) {
  switch (rule) {
    case UpdateRule::Sgd: return f(std::integral_constant<UpdateRule, UpdateRule::Sgd>{});
    case UpdateRule::Sgdp: return f(std::integral_constant<UpdateRule, UpdateRule::Sgdp>{});
    case UpdateRule::Adam: return f(std::integral_constant<UpdateRule, UpdateRule::Adam>{});
    case UpdateRule::AdamP: return f(std::integral_constant<UpdateRule, UpdateRule::AdamP>{});
    case UpdateRule::Madgrad: return f(std::integral_constant<UpdateRule, UpdateRule::Madgrad>{});
  }
}

void step_group(const MultiTensorStep& step) {
  if (step.params.empty()) return;
  with_floating_type(step.params.front().param.dtype(), "optimizer_step", [&](auto tag) {
    using T = decltype(tag);
    with_update_rule(step.rule, [&](auto rule_tag) {
      for (const ParamUpdate& update : step.params) step_param<decltype(rule_tag)::value, T>(step, update);
    });
  });
}

}  // namespace

// (The CPU's update allocates nothing.)
void optimizer_step(const std::vector<MultiTensorStep>& groups) {
  for (const MultiTensorStep& step : groups) step_group(step);
}

void global_norm(const std::vector<Tensor>& tensors, const Tensor& out) {
  with_floating_type(out.dtype(), "global_norm", [&](auto tag) {
    using T = decltype(tag);
    double total = 0;
    for (const Tensor& t : tensors) {
      const T* x = t.data<T>();
      const int64_t n = t.numel();
      // Fixed chunks summed in order: the same bits whatever the number of threads.
      const int64_t chunks = (n + kChunk - 1) / kChunk;
      std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 2)
      for (int64_t k = 0; k < chunks; ++k) {
        double sum = 0;
        for (int64_t i = k * kChunk; i < std::min(n, (k + 1) * kChunk); ++i) sum += double(x[i]) * double(x[i]);
        partial[static_cast<size_t>(k)] = sum;
      }
      for (double sum : partial) total += sum;
    }
    out.data<T>()[0] = static_cast<T>(std::sqrt(total));
  });
}

void clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm) {
  with_floating_type(norm.dtype(), "clip_by_norm", [&](auto tag) {
    using T = decltype(tag);
    const T coefficient = static_cast<T>(max_norm) / (norm.data<T>()[0] + static_cast<T>(1e-6));
    const T factor = coefficient > T(1) ? T(1) : coefficient;  // a NaN coefficient stays NaN
    for (const Tensor& t : tensors) {
      T* x = t.data<T>();
      const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 2 * kChunk)
      for (int64_t i = 0; i < n; ++i) x[i] *= factor;
    }
  });
}

}  // namespace effnet::cpu
