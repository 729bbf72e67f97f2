// CPU elementwise kernels: fill, copy/cast, Philox random fills, unary and binary math, addcmul. The scalar math
// is in tensor/elementwise_math.h, shared with the CUDA kernels; float16 and bfloat16 elements are computed
// in float32 and rounded once (compute_t).
#include <algorithm>
#include <type_traits>

#include "tensor/cpu/isa.h"
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/libm_expf.h"
#include "tensor/cpu/loops.h"
#include "tensor/elementwise_math.h"
#include "tensor/philox.h"

namespace effnet::cpu {

void fill(const Tensor& dst, double value) {
  with_copyable_type(dst.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    const T v = static_cast<T>(value);
    for_each_run<1>({&dst}, [v](auto p, auto s, int64_t n) {
      T* o = reinterpret_cast<T*>(p[0]);
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = v;
    });
  });
}

void copy(const Tensor& dst, const Tensor& src) {
  with_copyable_type(dst.dtype(), "copy", [&](auto out_tag) {
    using Out = decltype(out_tag);
    with_copyable_type(src.dtype(), "copy", [&](auto in_tag) {
      using In = decltype(in_tag);
      for_each_run<2>({&dst, &src}, [](auto p, auto s, int64_t n) {
        Out* o = reinterpret_cast<Out*>(p[0]);
        const In* x = reinterpret_cast<const In*>(p[1]);
        if (s[0] == 1 && s[1] == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(x[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * s[0]] = static_cast<Out>(x[i * s[1]]);
        }
      });
    });
  });
}

void random(const Tensor& dst, RandomKind kind, double a, double b, uint64_t seed, uint64_t offset) {
  with_floating_type(dst.dtype(), "random", [&](auto tag) {
    using T = decltype(tag);
    T* out = dst.data<T>();
    const int64_t n = dst.numel();
#pragma omp parallel for schedule(static) if (n > 2 * kChunk)
    for (int64_t i = 0; i < n; ++i) {
      const philox::Words r = philox::generate(seed, offset + static_cast<uint64_t>(i));
      out[i] = kind == RandomKind::Uniform ? philox::uniform_between<T>(r, a, b) : philox::normal_with<T>(r, a, b);
    }
  });
}

namespace {

// Sigmoid, SiLU and SiLU's gradient call libm's exp once per element, and the call keeps the loop scalar. On
// contiguous float32 and float64 runs, exp(-x) is taken for a block of elements first, with libm's bits
// (float32: libm_expf.h, a vector loop where it can be; float64: the same call as before), and the rest of
// elementwise_math.h's formula — a division and a few products, each element on its own — runs as a vector
// loop, for AVX2 where the CPU has it (isa.h).
constexpr int64_t kExpBlock = 256;

template <UnaryOp kOp>
constexpr bool kSigmoidBased = kOp == UnaryOp::Sigmoid || kOp == UnaryOp::Silu;

// out = sigmoid(x) or silu(x) = x sigmoid(x), given e = exp(-x).
template <UnaryOp kOp, class T>
struct SigmoidFromExp {
  EFFNET_LOOP_INLINE static void run(const T* x, const T* e, T* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const T sigmoid = T(1) / (T(1) + e[i]);
      out[i] = kOp == UnaryOp::Silu ? x[i] * sigmoid : sigmoid;
    }
  }
};

// out = silu'(a) b, given e = exp(-a).
template <class T>
struct SiluGradFromExp {
  EFFNET_LOOP_INLINE static void run(const T* a, const T* b, const T* e, T* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const T s = T(1) / (T(1) + e[i]);
      out[i] = b[i] * s * (T(1) + a[i] * (T(1) - s));
    }
  }
};

// Calls finish(first, count, e) for each block of [0, n) with e[j] = exp(-x[first + j]).
template <class T, class Finish>
void by_exp_blocks(const T* x, int64_t n, Finish&& finish) {
  T e[kExpBlock];
  [[maybe_unused]] float minus_x[kExpBlock];
  for (int64_t first = 0; first < n; first += kExpBlock) {
    const int64_t count = std::min(kExpBlock, n - first);
    if constexpr (std::is_same_v<T, float>) {
      for (int64_t j = 0; j < count; ++j) minus_x[j] = -x[first + j];
      libm_expf(minus_x, e, count);
    } else {
      for (int64_t j = 0; j < count; ++j) e[j] = math::exp(-x[first + j]);
    }
    finish(first, count, e);
  }
}

// T is the element type; the math runs in compute_t<T> (float32 for the 16-bit types, rounded once on store).
template <UnaryOp kOp, class T>
void unary_typed(const Tensor& x, compute_t<T> alpha, const Tensor& out) {
  using C = compute_t<T>;
  for_each_run<2>({&out, &x}, [alpha](auto p, auto s, int64_t n) {
    T* o = reinterpret_cast<T*>(p[0]);
    const T* v = reinterpret_cast<const T*>(p[1]);
    if constexpr (kSigmoidBased<kOp> && std::is_same_v<T, C>) {
      if (s[0] == 1 && s[1] == 1) {
        by_exp_blocks(v, n, [&](int64_t first, int64_t count, const T* e) {
          run_for_isa<SigmoidFromExp<kOp, T>>(v + first, e, o + first, count);
        });
        return;
      }
    }
    if (s[0] == 1 && s[1] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(math::unary<kOp>(static_cast<C>(v[i]), alpha));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        o[i * s[0]] = static_cast<T>(math::unary<kOp>(static_cast<C>(v[i * s[1]]), alpha));
      }
    }
  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, double alpha, const Tensor& out) {
  if (x.dtype() == DType::Int64) {  // counters: only x + alpha
    EFFNET_CHECK(op == UnaryOp::AddScalar, "unary: int64 tensors support only adding a scalar");
    unary_typed<UnaryOp::AddScalar, int64_t>(x, static_cast<int64_t>(alpha), out);
    return;
  }
  with_computable_type(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    math::with_unary_op(op, [&](auto op_tag) {
      unary_typed<decltype(op_tag)::value, T>(x, static_cast<compute_t<T>>(alpha), out);
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  with_computable_type(a.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    math::with_binary_op(op, [&](auto op_tag) {
      constexpr BinaryOp kOp = decltype(op_tag)::value;
      for_each_run<3>({&out, &a, &b}, [](auto p, auto s, int64_t n) {
        T* o = reinterpret_cast<T*>(p[0]);
        const T* x = reinterpret_cast<const T*>(p[1]);
        const T* y = reinterpret_cast<const T*>(p[2]);
        if constexpr (kOp == BinaryOp::SiluGrad && std::is_same_v<T, C>) {
          if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
            by_exp_blocks(x, n, [&](int64_t first, int64_t count, const T* e) {
              run_for_isa<SiluGradFromExp<T>>(x + first, y + first, e, o + first, count);
            });
            return;
          }
        }
        if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
          for (int64_t i = 0; i < n; ++i) {
            o[i] = static_cast<T>(math::binary<kOp>(static_cast<C>(x[i]), static_cast<C>(y[i])));
          }
        } else {
          for (int64_t i = 0; i < n; ++i) {
            o[i * s[0]] =
                static_cast<T>(math::binary<kOp>(static_cast<C>(x[i * s[1]]), static_cast<C>(y[i * s[2]])));
          }
        }
      });
    });
  });
}

void addcmul(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& out) {
  with_computable_type(a.dtype(), "addcmul", [&](auto tag) {
    using T = decltype(tag);
    for_each_run<4>({&out, &a, &b, &c}, [](auto p, auto s, int64_t n) {
      T* o = reinterpret_cast<T*>(p[0]);
      const T* x = reinterpret_cast<const T*>(p[1]);
      const T* y = reinterpret_cast<const T*>(p[2]);
      const T* z = reinterpret_cast<const T*>(p[3]);
      // Runs where a and c are contiguous or one broadcast value (a residual with its drop-path scale, batch
      // norm's shift and scale) get their strides as constants, so that the loop vectorizes.
      auto unit_run = [&](auto a_step, auto c_step) {
        for (int64_t i = 0; i < n; ++i) o[i] = math::add_product(x[i * a_step], y[i], z[i * c_step]);
      };
      using Zero = std::integral_constant<int64_t, 0>;
      using One = std::integral_constant<int64_t, 1>;
      if (s[0] == 1 && s[2] == 1 && s[1] <= 1 && s[3] <= 1) {
        if (s[1] == 1 && s[3] == 1) unit_run(One{}, One{});
        else if (s[1] == 1) unit_run(One{}, Zero{});
        else if (s[3] == 1) unit_run(Zero{}, One{});
        else unit_run(Zero{}, Zero{});
      } else {
        for (int64_t i = 0; i < n; ++i) o[i * s[0]] = math::add_product(x[i * s[1]], y[i * s[2]], z[i * s[3]]);
      }
    });
  });
}

}  // namespace effnet::cpu
