// The per-element update equations of every optimizer, written once for the CPU loops
// (tensor/cpu/optim.cpp) and the CUDA kernels (tensor/cuda/optim.cu). Each follows its reference's order of
// operations (torch.optim for SGD and Adam/AdamW, the `adamp` package for AdamP and SGDP, the `madgrad`
// package for MADGRAD), so float32 results agree to rounding.
//
// Legend: p parameter, g gradient, t the parameter's step count, lr learning rate, wd weight decay,
// mu momentum, tau dampening, b1 b2 Adam's betas, m v Adam's moments, u the direction a rule steps along.
//
//   SGD      d = g + wd p;  buf = d (t = 1) or mu buf + (1 - tau) d;  u = d + mu buf (nesterov) or buf;
//            p -= lr u                                                    (mu = 0: u = d, no buffer)
//   SGDP     buf = mu buf + (1 - tau) g;  u = g + mu buf (nesterov) or buf;  u -= radial part (buf too
//            when u is buf);  p *= 1 - lr wd r / (1 - mu);  p -= lr u
//   Adam     g += wd p (Adam) or p *= 1 - lr wd (AdamW);  m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g^2;
//            u = m / (sqrt(v) / sqrt(1 - b2^t) + eps);  p -= lr / (1 - b1^t) u
//   AdamP    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  den = sqrt(v) / sqrt(1 - b2^t) + eps;
//            u = (b1 m + (1 - b1) g) / den (nesterov) or m / den;  u -= radial part;
//            p *= 1 - lr wd r;  p -= lr / (1 - b1^t) u
//   MADGRAD  lr' = lr + eps (lr > 0), lamb = lr' sqrt(k + 1) with k the optimizer's step count;
//            g += wd p (unless decoupled);  x0 = p (momentum > 0, kept from t = 1) or p + s / rms;
//            S += lamb g^2;  s += lamb g;  rms = S^(1/3) + eps;  z = x0 - s / rms;
//            p = mu p + (1 - mu) z (momentum > 0) or z;  decoupled: p -= lr' wd p_old
//
// The radial part (AdamP, SGDP; parameters with more than one dimension): with rows = the parameter viewed
// as [size(0), -1] (one row per output channel) and cos = |g . p| / (max(|g|, eps) max(|p|, eps)),
//   if max over rows of cos < delta / sqrt(row length):   per row, u -= p (p . u) / (|p| + eps)^2
//   else if cos of the whole tensor < delta / sqrt(numel): the same with the whole tensor as one row
//   else nothing;  r = wd_ratio where it applied, 1 otherwise.
// Dot products and norms accumulate in float64 in every dtype.
#pragma once

#include <cmath>
#include <cstdint>

#include "optim/multi_tensor.h"
#include "tensor/elementwise_math.h"
#include "tensor/host_device.h"

namespace effnet::optim_math {

// One parameter's scalars in its element type. The compound ones are computed in float64 first, as the
// references compute them in Python floats before a tensor op rounds them to the parameter's dtype.
template <class T>
struct Coefficients {
  T lr, weight_decay, step_size, bias_correction2_sqrt, eps;
  T momentum, one_minus_dampening;          // SGD, SGDP
  T beta1, one_minus_beta1, beta2, one_minus_beta2;  // Adam, AdamP
  T decay;            // multiplies p: decoupled weight decay (1 when there is none)
  T projected_decay;  // AdamP, SGDP: the same, scaled by wd_ratio, where the projection applied
  T keep, mix;        // MADGRAD: p = keep p + mix z  (mix = 1 - momentum, keep = 1 - mix)
  T decoupled_step;   // MADGRAD: lr' wd
  bool has_momentum, nesterov, first_step, l2_decay;
};

template <class T>
Coefficients<T> coefficients(UpdateRule rule, const Hyperparameters& h, const ParamUpdate& param) {
  Coefficients<T> c{};
  c.lr = static_cast<T>(h.lr);
  c.weight_decay = static_cast<T>(h.weight_decay);
  c.step_size = static_cast<T>(param.step_size);
  c.bias_correction2_sqrt = static_cast<T>(param.bias_correction2_sqrt);
  c.eps = static_cast<T>(h.eps);
  c.momentum = static_cast<T>(h.momentum);
  c.one_minus_dampening = static_cast<T>(1 - h.dampening);
  c.beta1 = static_cast<T>(h.beta1);
  c.one_minus_beta1 = static_cast<T>(1 - h.beta1);
  c.beta2 = static_cast<T>(h.beta2);
  c.one_minus_beta2 = static_cast<T>(1 - h.beta2);
  c.has_momentum = h.momentum != 0;
  c.nesterov = h.nesterov;
  c.first_step = param.first_step;
  c.l2_decay = h.weight_decay != 0 && !h.decoupled_weight_decay;
  double decay = 1, projected_decay = 1;
  switch (rule) {
    case UpdateRule::Sgd: break;
    case UpdateRule::Sgdp:
      if (h.weight_decay > 0) {
        decay = 1 - h.lr * h.weight_decay / (1 - h.momentum);
        projected_decay = 1 - h.lr * h.weight_decay * h.wd_ratio / (1 - h.momentum);
      }
      break;
    case UpdateRule::Adam:
      if (h.weight_decay != 0 && h.decoupled_weight_decay) decay = 1 - h.lr * h.weight_decay;
      break;
    case UpdateRule::AdamP:
      if (h.weight_decay > 0) {
        decay = 1 - h.lr * h.weight_decay;
        projected_decay = 1 - h.lr * h.weight_decay * h.wd_ratio;
      }
      break;
    case UpdateRule::Madgrad: {
      const double mix = 1 - h.momentum;
      c.mix = static_cast<T>(mix);
      c.keep = static_cast<T>(1 - mix);
      const double stable_lr = h.lr != 0 ? h.lr + h.eps : 0;  // madgrad adds eps "for stability"
      c.decoupled_step = static_cast<T>(h.decoupled_weight_decay ? stable_lr * h.weight_decay : 0);
      break;
    }
  }
  c.decay = static_cast<T>(decay);
  c.projected_decay = static_cast<T>(projected_decay);
  return c;
}

// MADGRAD's cube-root denominator; with eps = 0 an empty accumulator divides to 0 instead of NaN (the
// reference does this for the new denominator only; momentum 0's x0 there gets 0 / 0 on a first step).
template <class T>
EFFNET_HOST_DEVICE inline T madgrad_rms(T grad_sum_sq, T eps) {
  const T rms = math::pow(grad_sum_sq, static_cast<T>(1.0 / 3.0)) + eps;
  return rms == T(0) ? static_cast<T>(INFINITY) : rms;
}

// Advances one element's state s[] (read old, left new) and returns the direction u the rule steps along
// (before any projection). Pure apart from s: the CUDA projection pass calls it without storing s.
template <UpdateRule kRule, class T>
EFFNET_HOST_DEVICE inline T advance(const Coefficients<T>& c, T p, T g, T (&s)[3]) {
  if constexpr (kRule == UpdateRule::Sgd) {
    const T d = c.l2_decay ? g + c.weight_decay * p : g;
    if (!c.has_momentum) return d;
    s[0] = c.first_step ? d : s[0] * c.momentum + c.one_minus_dampening * d;
    return c.nesterov ? d + c.momentum * s[0] : s[0];
  } else if constexpr (kRule == UpdateRule::Sgdp) {
    s[0] = s[0] * c.momentum + c.one_minus_dampening * g;
    return c.nesterov ? g + c.momentum * s[0] : s[0];
  } else if constexpr (kRule == UpdateRule::Adam) {
    if (c.l2_decay) g = g + c.weight_decay * p;
    s[0] = s[0] + c.one_minus_beta1 * (g - s[0]);  // torch's lerp for a weight below 1/2
    s[1] = s[1] * c.beta2 + c.one_minus_beta2 * g * g;
    return s[0] / (math::sqrt(s[1]) / c.bias_correction2_sqrt + c.eps);
  } else if constexpr (kRule == UpdateRule::AdamP) {
    s[0] = s[0] * c.beta1 + c.one_minus_beta1 * g;
    s[1] = s[1] * c.beta2 + c.one_minus_beta2 * g * g;
    const T denom = math::sqrt(s[1]) / c.bias_correction2_sqrt + c.eps;
    return c.nesterov ? (c.beta1 * s[0] + c.one_minus_beta1 * g) / denom : s[0] / denom;
  } else {
    static_assert(kRule == UpdateRule::Madgrad);
    if (c.l2_decay) g = g + c.weight_decay * p;
    T x0;
    if (c.has_momentum) {
      if (c.first_step) s[2] = p;
      x0 = s[2];
    } else {
      x0 = p + s[1] / madgrad_rms(s[0], c.eps);
    }
    s[0] = s[0] + c.step_size * g * g;
    s[1] = s[1] + c.step_size * g;
    return x0 - s[1] / madgrad_rms(s[0], c.eps);
  }
}

// Removes the radial part from the direction: u - radial p, with radial from radial_coefficient below.
// SGDP without nesterov steps along its momentum buffer itself, which the reference projects in place
// (d_p aliases buf there), so the stored buffer is projected too.
template <UpdateRule kRule, class T>
EFFNET_HOST_DEVICE inline T project(const Coefficients<T>& c, T p, T u, T radial, T (&s)[3]) {
  const T projected = u - radial * p;
  if constexpr (kRule == UpdateRule::Sgdp) {
    if (!c.nesterov) s[0] = projected;
  }
  return projected;
}

// The parameter's new value from its old value p and the (projected) direction u. `decay` is the
// decoupled weight-decay factor in force: c.decay, or c.projected_decay where the projection applied.
template <UpdateRule kRule, class T>
EFFNET_HOST_DEVICE inline T apply(const Coefficients<T>& c, T p, T u, T decay) {
  if constexpr (kRule == UpdateRule::Sgd) {
    return p - c.lr * u;
  } else if constexpr (kRule == UpdateRule::Sgdp) {
    return p * decay - c.lr * u;
  } else if constexpr (kRule == UpdateRule::Adam || kRule == UpdateRule::AdamP) {
    return p * decay - c.step_size * u;
  } else {
    static_assert(kRule == UpdateRule::Madgrad);
    const T mixed = c.has_momentum ? p * c.keep + c.mix * u : u;
    return mixed - c.decoupled_step * p;
  }
}

// ---- the projection test (AdamP, SGDP)

// Sums over one row (or the whole tensor) of a projected parameter.
struct ProjectionSums {
  double grad_dot_param = 0, grad_sq = 0, param_sq = 0, param_dot_direction = 0;

  EFFNET_HOST_DEVICE void add(double g, double p, double u) {
    grad_dot_param += g * p;
    grad_sq += g * g;
    param_sq += p * p;
    param_dot_direction += p * u;
  }
  EFFNET_HOST_DEVICE void add(const ProjectionSums& o) {
    grad_dot_param += o.grad_dot_param;
    grad_sq += o.grad_sq;
    param_sq += o.param_sq;
    param_dot_direction += o.param_dot_direction;
  }
};

// |cos(g, p)| with each norm clamped below at eps (torch.nn.functional.cosine_similarity).
EFFNET_HOST_DEVICE inline double abs_cosine(const ProjectionSums& s, double eps) {
  return ::fabs(s.grad_dot_param) / (::fmax(::sqrt(s.grad_sq), eps) * ::fmax(::sqrt(s.param_sq), eps));
}

// The larger of two cosines, where a NaN wins and stays (torch's max propagates NaN, and a NaN maximum
// fails the `<` test below, so no projection happens).
EFFNET_HOST_DEVICE inline double max_propagating_nan(double a, double b) { return (b > a || b != b) ? b : a; }

// True when a cosine this small means "orthogonal" for a view with rows of `row_length` elements.
EFFNET_HOST_DEVICE inline bool nearly_orthogonal(double max_cosine, double delta, int64_t row_length) {
  return max_cosine < delta / ::sqrt(static_cast<double>(row_length));
}

// (p_n . u) scaled so that u - radial p = u - p_n (p_n . u), with p_n = p / (|p| + eps).
EFFNET_HOST_DEVICE inline double radial_coefficient(const ProjectionSums& s, double eps) {
  const double norm = ::sqrt(s.param_sq) + eps;
  return s.param_dot_direction / (norm * norm);
}

}  // namespace effnet::optim_math
