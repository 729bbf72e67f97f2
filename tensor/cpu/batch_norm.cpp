// CPU batch normalization (training mode) over (N, H, W) per channel; see tensor/backend.h for the math.
//
//   N batch, C channels, HW = H W pixels per plane, M = N HW values per channel
//
// Each channel is independent, so channels are spread over the threads. Sums accumulate in double, and
// the variance is a second pass over (x - mean)^2 rather than E[x^2] - mean^2, which cancels badly. The
// sums are SIMD reductions (a few partial sums in vector lanes, added at the end): a single running sum
// would make every addition wait for the previous one. The order is fixed, so results are deterministic.
//
// With Activation::Silu (the fused batch norm + SiLU) the normalizing pass applies silu to each value z as it
// writes it, and the backward computes dz = silu'(z) grad_y from z recomputed out of x and the saved
// statistics into grad_x's memory, plane by plane, sums it while the plane is in cache, and the last pass
// reads it back in place: no z tensor is kept. float32 computes the sigmoid with vector_math.h's exponential
// and the last pass in float32, so these loops run in SIMD registers (about an ulp from the unfused ops);
// float64 computes the sigmoid exactly as the unfused ops do. The elementwise passes (no sums) run in AVX2
// where the CPU has it (tensor/cpu/isa.h) with the same bits as the baseline's; the sums stay in the
// baseline's vector width.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "tensor/cpu/adapt.h"
#include "tensor/cpu/isa.h"
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/loops.h"
#include "tensor/cpu/vector_math.h"
#include "tensor/elementwise_math.h"

namespace effnet::cpu {

namespace {

template <class T>
inline T fused_sigmoid(T z) {
  if constexpr (std::is_same_v<T, float>) return vector_sigmoid(z);
  else return math::sigmoid(z);
}

// The elementwise loops over one plane of hw values, run through run_for_isa (AVX2 where the CPU has it).
// dst = z or silu(z) with z = src scale + shift:
struct NormalizePlane {
  template <class T>
  EFFNET_LOOP_INLINE static void run(const T* src, T* dst, int64_t hw, T scale, T shift, Activation act) {
    if (act == Activation::Silu) {
#pragma omp simd
      for (int64_t k = 0; k < hw; ++k) {
        const T z = src[k] * scale + shift;
        dst[k] = z * fused_sigmoid(z);
      }
    } else {
      for (int64_t k = 0; k < hw; ++k) dst[k] = src[k] * scale + shift;
    }
  }
};

// the fused backward's dz = silu'(z) dy with z = x scale + shift recomputed, as BinaryOp::SiluGrad computes it;
struct SiluGradPlane {
  template <class T>
  EFFNET_LOOP_INLINE static void run(const T* x, const T* dy, T* dz, int64_t hw, T scale, T shift) {
#pragma omp simd
    for (int64_t k = 0; k < hw; ++k) {
      const T z = x[k] * scale + shift, s = fused_sigmoid(z);
      dz[k] = dy[k] * s * (T(1) + z * (T(1) - s));
    }
  }
};

// and, once the sums are known, grad_x = a (dz - b - (x - mean) d) in place of dz;
// the unfused backward's grad_x = k (m dy - sum_dy - x_hat sum_dy_x_hat), x_hat = (x - mean) invstd, in
// float64 but for m dy, a product in T (its bits since the first version; float32 rounds it to 24 bits
// before the difference, which can cancel):
struct BatchNormGradPlaneInDouble {
  template <class T>
  EFFNET_LOOP_INLINE static void run(const T* x, const T* dy, T* dx, int64_t hw, double mean, double invstd,
                                     double k, T m, double sum_dy, double sum_dy_xhat) {
    for (int64_t i = 0; i < hw; ++i) {
      const double xhat = (x[i] - mean) * invstd;
      dx[i] = static_cast<T>(k * (m * dy[i] - sum_dy - xhat * sum_dy_xhat));
    }
  }
};

struct BatchNormGradPlane {
  template <class T>
  EFFNET_LOOP_INLINE static void run(const T* x, T* dz, int64_t hw, T a, T b, T mean, T d) {
#pragma omp simd
    for (int64_t k = 0; k < hw; ++k) dz[k] = a * (dz[k] - b - (x[k] - mean) * d);
  }
};

}  // namespace

void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                      const Tensor& running_var, double momentum, double eps, Activation act, const Tensor& y,
                      const Tensor& save_mean, const Tensor& save_invstd) {
  if (needs_adapting(x) || needs_adapting(y)) {  // 16-bit (float32 statistics) or channels-last
    const Tensor result = adapted_like(y);
    batch_norm_train(adapted(x), gamma, beta, running_mean, running_var, momentum, eps, Activation::None, result,
                     save_mean, save_invstd);
    copy(y, result);  // z, rounded once into y's dtype and layout
    if (act == Activation::Silu) unary(UnaryOp::Silu, y, 0, y);
    return;
  }
  with_floating_type(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / (n * c), m = n * hw;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    const T* g = gamma.data<T>();
    const T* b = beta.data<T>();
    T* rm = running_mean.data<T>();
    T* rv = running_var.data<T>();
    T* sm = save_mean.data<T>();
    T* si = save_invstd.data<T>();
#pragma omp parallel for schedule(dynamic) if (x.numel() > 2 * kChunk)
    for (int64_t ch = 0; ch < c; ++ch) {
      double total = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T* plane = in + (i * c + ch) * hw;
#pragma omp simd reduction(+ : total)
        for (int64_t k = 0; k < hw; ++k) total += plane[k];
      }
      const double mu = total / static_cast<double>(m);
      double squares = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T* plane = in + (i * c + ch) * hw;
#pragma omp simd reduction(+ : squares)
        for (int64_t k = 0; k < hw; ++k) squares += (plane[k] - mu) * (plane[k] - mu);
      }
      const double var = squares / static_cast<double>(m);
      const double invstd = 1.0 / std::sqrt(var + eps);
      const T scale = static_cast<T>(g[ch] * invstd), shift = static_cast<T>(b[ch] - mu * g[ch] * invstd);
      for (int64_t i = 0; i < n; ++i) {
        run_for_isa<NormalizePlane>(in + (i * c + ch) * hw, out + (i * c + ch) * hw, hw, scale, shift, act);
      }
      rm[ch] = static_cast<T>((1 - momentum) * rm[ch] + momentum * mu);
      rv[ch] = static_cast<T>((1 - momentum) * rv[ch] + momentum * var * m / (m - 1));
      sm[ch] = static_cast<T>(mu);
      si[ch] = static_cast<T>(invstd);
    }
  });
}

void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& save_mean, const Tensor& save_invstd, double eps, Activation act,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta) {
  if (needs_adapting(grad_y) || needs_adapting(x) || needs_adapting(grad_x)) {
    // (For 16-bit operands the recomputed z stays float32 here; CUDA rounds it as the forward did.)
    const Tensor result = adapted_like(grad_x);
    batch_norm_backward(adapted(grad_y), adapted(x), gamma, beta, save_mean, save_invstd, eps, act, result,
                        grad_gamma, grad_beta);
    copy(grad_x, result);
    return;
  }
  with_floating_type(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / (n * c), m = n * hw;
    const T* in = x.data<T>();
    T* gx = grad_x.data<T>();
    const T* gy = grad_y.data<T>();
    const T* g = gamma.data<T>();
    const T* b = act == Activation::Silu ? beta.data<T>() : nullptr;
    const T* sm = save_mean.data<T>();
    const T* si = save_invstd.data<T>();
    T* gg = grad_gamma.data<T>();
    T* gb = grad_beta.data<T>();
#pragma omp parallel for schedule(dynamic) if (x.numel() > 2 * kChunk)
    for (int64_t ch = 0; ch < c; ++ch) {
      const double mu = sm[ch], invstd = si[ch];
      double sum_dy = 0, sum_dy_xhat = 0;
      if (act == Activation::Silu) {
        const T scale = static_cast<T>(g[ch] * invstd), shift = static_cast<T>(b[ch] - mu * g[ch] * invstd);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t base = (i * c + ch) * hw;
          run_for_isa<SiluGradPlane>(in + base, gy + base, gx + base, hw, scale, shift);
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
          for (int64_t k = 0; k < hw; ++k) {
            sum_dy += gx[base + k];
            sum_dy_xhat += gx[base + k] * (in[base + k] - mu) * invstd;
          }
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          const int64_t base = (i * c + ch) * hw;
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
          for (int64_t k = 0; k < hw; ++k) {
            sum_dy += gy[base + k];
            sum_dy_xhat += gy[base + k] * (in[base + k] - mu) * invstd;
          }
        }
      }
      gb[ch] = static_cast<T>(sum_dy);
      gg[ch] = static_cast<T>(sum_dy_xhat);
      if (act == Activation::Silu) {  // in T: a (dz - b - (x - mean) d), as CUDA's fused kernels compute it
        const T a = static_cast<T>(g[ch] * invstd), mean = static_cast<T>(mu);
        const T b_coef = static_cast<T>(sum_dy / m), d = static_cast<T>(invstd * sum_dy_xhat / m);
        for (int64_t i = 0; i < n; ++i) {
          run_for_isa<BatchNormGradPlane>(in + (i * c + ch) * hw, gx + (i * c + ch) * hw, hw, a, b_coef, mean, d);
        }
        continue;
      }
      const double k_scale = g[ch] * invstd / static_cast<double>(m);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t base = (i * c + ch) * hw;
        run_for_isa<BatchNormGradPlaneInDouble>(in + base, gy + base, gx + base, hw, mu, invstd, k_scale,
                                                static_cast<T>(m), sum_dy, sum_dy_xhat);
      }
    }
  });
}

void batch_norm_eval(const Tensor& x, const Tensor& scale, const Tensor& shift, Activation act, const Tensor& y) {
  if (needs_adapting(x) || needs_adapting(y)) {  // as batch_norm_train: z rounded to y's dtype, then silu
    const Tensor result = adapted_like(y);
    batch_norm_eval(adapted(x), scale, shift, Activation::None, result);
    copy(y, result);
    if (act == Activation::Silu) unary(UnaryOp::Silu, y, 0, y);
    return;
  }
  with_floating_type(x.dtype(), "batch_norm_eval", [&](auto tag) {
    using T = decltype(tag);
    const int64_t c = x.size(1), planes = x.size(0) * c, hw = x.numel() / std::max<int64_t>(planes, 1);
    const T* in = x.data<T>();
    T* out = y.data<T>();
    const T* sc = scale.data<T>();
    const T* sh = shift.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() > 2 * kChunk)
    for (int64_t p = 0; p < planes; ++p) {
      run_for_isa<NormalizePlane>(in + p * hw, out + p * hw, hw, sc[p % c], sh[p % c], act);
    }
  });
}

}  // namespace effnet::cpu
