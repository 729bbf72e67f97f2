// Element types. float32 and float64 are computed on; float16 and bfloat16 (tensor/half.h) are stored,
// filled and cast to and from every other type on both backends — the mixed-precision path will compute on
// them; int64 holds indices (argmax results, class labels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>

namespace effnet {

enum class DType : uint8_t { Float32, Float64, Float16, BFloat16, Int64 };

constexpr DType kFloat32 = DType::Float32;
constexpr DType kFloat64 = DType::Float64;
constexpr DType kFloat16 = DType::Float16;
constexpr DType kBFloat16 = DType::BFloat16;
constexpr DType kInt64 = DType::Int64;

constexpr size_t element_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Float16: return 2;
    case DType::BFloat16: return 2;
    case DType::Int64: return 8;
  }
  return 0;
}

constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Int64: return "int64";
  }
  return "?";
}

constexpr bool is_floating(DType t) { return t != DType::Int64; }

// float16 or bfloat16: stored in 16 bits, computed in float32 (tensor/half.h, mixed precision).
constexpr bool is_16bit(DType t) { return t == DType::Float16 || t == DType::BFloat16; }

// The C++ type that holds one element of a computable dtype.
template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::Float32; }
template <>
constexpr DType dtype_of<double>() { return DType::Float64; }
template <>
constexpr DType dtype_of<int64_t>() { return DType::Int64; }

inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

}  // namespace effnet
