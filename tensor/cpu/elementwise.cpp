// CPU elementwise kernels: fill, copy/cast, Philox random fills, unary and binary math. The scalar math
// is in tensor/elementwise_math.h, shared with the CUDA kernels; float16 and bfloat16 elements are computed
// in float32 and rounded once (compute_t).
#include "tensor/cpu/kernels.h"
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

// T is the element type; the math runs in compute_t<T> (float32 for the 16-bit types, rounded once on store).
template <UnaryOp kOp, class T>
void unary_typed(const Tensor& x, compute_t<T> alpha, const Tensor& out) {
  using C = compute_t<T>;
  for_each_run<2>({&out, &x}, [alpha](auto p, auto s, int64_t n) {
    T* o = reinterpret_cast<T*>(p[0]);
    const T* v = reinterpret_cast<const T*>(p[1]);
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

}  // namespace effnet::cpu
