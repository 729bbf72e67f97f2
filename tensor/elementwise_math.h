// The scalar math of every elementwise op, written once for both backends. A CPU loop and a CUDA kernel
// are each instantiated per (op, element type) with the op as a template argument, so the switch over ops
// happens once per launch, not once per element.
//
//   sigmoid(x) = 1 / (1 + e^-x)            silu(x) = x * sigmoid(x)
//   silu'(x)   = s * (1 + x * (1 - s))     sigmoid'(x) = s * (1 - s)      tanh'(x) = 1 - tanh(x)^2
#pragma once

#include <cmath>
#include <type_traits>
#include <utility>

#include "tensor/backend.h"
#include "tensor/half.h"
#include "tensor/host_device.h"

namespace effnet::math {

EFFNET_HOST_DEVICE inline float exp(float x) { return ::expf(x); }
EFFNET_HOST_DEVICE inline double exp(double x) { return ::exp(x); }
EFFNET_HOST_DEVICE inline float log(float x) { return ::logf(x); }
EFFNET_HOST_DEVICE inline double log(double x) { return ::log(x); }
EFFNET_HOST_DEVICE inline float sqrt(float x) { return ::sqrtf(x); }
EFFNET_HOST_DEVICE inline double sqrt(double x) { return ::sqrt(x); }
EFFNET_HOST_DEVICE inline float tanh(float x) { return ::tanhf(x); }
EFFNET_HOST_DEVICE inline double tanh(double x) { return ::tanh(x); }
EFFNET_HOST_DEVICE inline float pow(float x, float y) { return ::powf(x, y); }
EFFNET_HOST_DEVICE inline double pow(double x, double y) { return ::pow(x, y); }
EFFNET_HOST_DEVICE inline float abs(float x) { return ::fabsf(x); }
EFFNET_HOST_DEVICE inline double abs(double x) { return ::fabs(x); }

template <class T>
EFFNET_HOST_DEVICE inline T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

template <UnaryOp op, class T>
EFFNET_HOST_DEVICE inline T unary(T x, T alpha) {
  if constexpr (op == UnaryOp::Neg) return -x;
  else if constexpr (op == UnaryOp::Exp) return exp(x);
  else if constexpr (op == UnaryOp::Log) return log(x);
  else if constexpr (op == UnaryOp::Sqrt) return sqrt(x);
  else if constexpr (op == UnaryOp::Rsqrt) return T(1) / sqrt(x);
  else if constexpr (op == UnaryOp::Abs) return abs(x);
  else if constexpr (op == UnaryOp::Sign) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  else if constexpr (op == UnaryOp::Sigmoid) return sigmoid(x);
  else if constexpr (op == UnaryOp::Silu) return x * sigmoid(x);
  else if constexpr (op == UnaryOp::Tanh) return tanh(x);
  else if constexpr (op == UnaryOp::Relu) return x < T(0) ? T(0) : x;  // NaN stays NaN
  else if constexpr (op == UnaryOp::AddScalar) return x + alpha;
  else if constexpr (op == UnaryOp::MulScalar) return x * alpha;
  else if constexpr (op == UnaryOp::PowScalar) return pow(x, alpha);
}

template <BinaryOp op, class T>
EFFNET_HOST_DEVICE inline T binary(T a, T b) {
  if constexpr (op == BinaryOp::Add) return a + b;
  else if constexpr (op == BinaryOp::Sub) return a - b;
  else if constexpr (op == BinaryOp::Mul) return a * b;
  else if constexpr (op == BinaryOp::Div) return a / b;
  else if constexpr (op == BinaryOp::Pow) return pow(a, b);
  else if constexpr (op == BinaryOp::Eq) return a == b ? T(1) : T(0);
  else if constexpr (op == BinaryOp::Ne) return a != b ? T(1) : T(0);
  else if constexpr (op == BinaryOp::Lt) return a < b ? T(1) : T(0);
  else if constexpr (op == BinaryOp::Le) return a <= b ? T(1) : T(0);
  else if constexpr (op == BinaryOp::Gt) return a > b ? T(1) : T(0);
  else if constexpr (op == BinaryOp::Ge) return a >= b ? T(1) : T(0);
  else if constexpr (op == BinaryOp::SiluGrad) {
    T s = sigmoid(a);
    return b * s * (T(1) + a * (T(1) - s));
  } else if constexpr (op == BinaryOp::SigmoidGrad) return b * a * (T(1) - a);
  else if constexpr (op == BinaryOp::TanhGrad) return b * (T(1) - a * a);
  else if constexpr (op == BinaryOp::ReluGrad) return a > T(0) ? b : T(0);
}

// Calls f(std::integral_constant<UnaryOp, op>{}) for the runtime `op`: the one switch per launch.
template <class F>
void with_unary_op(UnaryOp op, F&& f) {
#define EFFNET_CASE(name) \
  case UnaryOp::name: return f(std::integral_constant<UnaryOp, UnaryOp::name>{});
  switch (op) {
    EFFNET_CASE(Neg) EFFNET_CASE(Exp) EFFNET_CASE(Log) EFFNET_CASE(Sqrt) EFFNET_CASE(Rsqrt) EFFNET_CASE(Abs)
    EFFNET_CASE(Sign) EFFNET_CASE(Sigmoid) EFFNET_CASE(Silu) EFFNET_CASE(Tanh) EFFNET_CASE(Relu)
    EFFNET_CASE(AddScalar) EFFNET_CASE(MulScalar) EFFNET_CASE(PowScalar)
  }
#undef EFFNET_CASE
}

template <class F>
void with_binary_op(BinaryOp op, F&& f) {
#define EFFNET_CASE(name) \
  case BinaryOp::name: return f(std::integral_constant<BinaryOp, BinaryOp::name>{});
  switch (op) {
    EFFNET_CASE(Add) EFFNET_CASE(Sub) EFFNET_CASE(Mul) EFFNET_CASE(Div) EFFNET_CASE(Pow)
    EFFNET_CASE(Eq) EFFNET_CASE(Ne) EFFNET_CASE(Lt) EFFNET_CASE(Le) EFFNET_CASE(Gt) EFFNET_CASE(Ge)
    EFFNET_CASE(SiluGrad) EFFNET_CASE(SigmoidGrad) EFFNET_CASE(TanhGrad) EFFNET_CASE(ReluGrad)
  }
#undef EFFNET_CASE
}

}  // namespace effnet::math

namespace effnet {

// Calls f(T{}) with T = float or double for a floating dtype; throws naming `op` for any other dtype.
template <class F>
void with_floating_type(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: EFFNET_FAIL(op, ": dtype ", dtype_name(dtype), " is not supported (float32 and float64 are)");
  }
}

// The type a kernel computes in for element type T: float16 and bfloat16 are loaded into float32, computed
// on, and rounded once when stored (PyTorch's "opmath"); float32 and float64 compute in themselves, so their
// results are unchanged by the 16-bit path.
template <class T>
struct ComputeType {
  using type = T;
};
template <>
struct ComputeType<Float16> {
  using type = float;
};
template <>
struct ComputeType<BFloat16> {
  using type = float;
};
template <class T>
using compute_t = typename ComputeType<T>::type;

namespace math {

// A product that is never contracted with a following addition into one fused multiply-add (nvcc contracts
// by default; effnet's C++ is compiled with -ffp-contract=off).
template <class C>  // float or double
EFFNET_HOST_DEVICE inline C mul_rn(C a, C b) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<C, float>) return __fmul_rn(a, b);
  else return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// addcmul's element a + b c, with the product rounded to T before the sum: the bits of add(a, mul(b, c)).
template <class T>
EFFNET_HOST_DEVICE inline T add_product(T a, T b, T c) {
  using C = compute_t<T>;
  const T product = static_cast<T>(mul_rn(static_cast<C>(b), static_cast<C>(c)));
  return static_cast<T>(static_cast<C>(a) + static_cast<C>(product));
}

}  // namespace math

// Calls f(T{}) for the dtypes the mixed-precision kernels take (elementwise math, reductions, convolution,
// batch norm): float32, float64, float16 and bfloat16; throws naming `op` for int64.
template <class F>
void with_computable_type(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float16: return f(Float16{});
    case DType::BFloat16: return f(BFloat16{});
    default: return with_floating_type(dtype, op, f);
  }
}

// The same for the dtypes that copy (casts included) and fill handle: every dtype. float16 and bfloat16
// elements (tensor/half.h) convert through float32.
template <class F>
void with_copyable_type(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Float16: return f(Float16{});
    case DType::BFloat16: return f(BFloat16{});
    case DType::Int64: return f(int64_t{});
  }
  EFFNET_FAIL(op, ": unknown dtype ", static_cast<int>(dtype));
}

}  // namespace effnet
