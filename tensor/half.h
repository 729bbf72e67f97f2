// The 16-bit floating types and their conversions, the same bits on the CPU and in CUDA kernels (software
// conversions, so the CPU is the reference a GPU cast is checked against).
//
//   float16   IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; largest 65504, smallest
//             normal 2^-14, smallest subnormal 2^-24
//   bfloat16  the top 16 bits of a float32: 1 sign, 8 exponent, 7 mantissa bits; float32's range
//
// To 16 bits: round to nearest, ties to even (as PyTorch and CUDA's __float2half_rn / __float2bfloat16_rn);
// too large for float16 (>= 65520) becomes infinity; a NaN becomes a quiet NaN: 0x7E00 with its sign for
// float16, 0x7FC0 for bfloat16 (c10::BFloat16's; PyTorch's vectorized CPU casts write 0xFFFF instead and
// keep float16 payload bits, so NaN bit patterns differ between libraries, and even within one). From 16
// bits: exact (every float16 and bfloat16 is a float32). Other types go through float32, as c10::Half and
// c10::BFloat16 do (a double is rounded twice: to float32, then to 16 bits).
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor/dtype.h"
#include "tensor/host_device.h"

namespace effnet {

EFFNET_HOST_DEVICE inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

EFFNET_HOST_DEVICE inline float float_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// Drops the low `shift` bits of `value`, rounding to nearest with ties to even (1 <= shift <= 31).
EFFNET_HOST_DEVICE inline uint32_t round_shift_to_even(uint32_t value, uint32_t shift) {
  const uint32_t kept = value >> shift, rest = value & ((1u << shift) - 1), half = 1u << (shift - 1);
  return kept + (rest > half || (rest == half && (kept & 1u)) ? 1u : 0u);
}

EFFNET_HOST_DEVICE inline uint16_t float_to_float16_bits(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u, magnitude = u & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
  if (magnitude >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520: infinity
  if (magnitude >= 0x38800000u) {  // a normal float16 (>= 2^-14): rebias the exponent, round off 13 bits;
    // a carry out of the mantissa moves to the next exponent, which is the right encoding
    const uint32_t rebiased = magnitude - ((127u - 15u) << 23);
    return static_cast<uint16_t>(sign | round_shift_to_even(rebiased, 13));
  }
  if (magnitude < 0x33000000u) return static_cast<uint16_t>(sign);  // below 2^-25: rounds to zero
  // Subnormal: the value in units of 2^-24 is the 24-bit significand shifted right by 126 - exponent
  // (14 to 24 places); rounding up from the largest subnormal gives 0x400, the smallest normal.
  const uint32_t exponent = magnitude >> 23, significand = (magnitude & 0x7FFFFFu) | 0x800000u;
  return static_cast<uint16_t>(sign | round_shift_to_even(significand, 126u - exponent));
}

EFFNET_HOST_DEVICE inline float float16_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16, exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
  if (exponent == 0x1Fu) return float_from_bits(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return float_from_bits(sign | ((exponent + 127u - 15u) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa x 2^-24, exact in float32 (a power of two times a small integer).
  const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // 2^-24
  return sign != 0 ? -magnitude : magnitude;
}

EFFNET_HOST_DEVICE inline uint16_t float_to_bfloat16_bits(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0u;  // NaN
  return static_cast<uint16_t>(round_shift_to_even(u, 16));  // a carry into the exponent is right, up to inf
}

EFFNET_HOST_DEVICE inline float bfloat16_bits_to_float(uint16_t b) { return float_from_bits(uint32_t{b} << 16); }

// Element types for float16 and bfloat16 tensors: storage plus conversions, no arithmetic (kernels convert
// to float32, compute, and convert back).
struct Float16 {
  uint16_t bits = 0;
  Float16() = default;
  template <class T>
  EFFNET_HOST_DEVICE explicit Float16(T value) : bits(float_to_float16_bits(static_cast<float>(value))) {}
  template <class T>
  EFFNET_HOST_DEVICE explicit operator T() const { return static_cast<T>(float16_bits_to_float(bits)); }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  template <class T>
  EFFNET_HOST_DEVICE explicit BFloat16(T value) : bits(float_to_bfloat16_bits(static_cast<float>(value))) {}
  template <class T>
  EFFNET_HOST_DEVICE explicit operator T() const { return static_cast<T>(bfloat16_bits_to_float(bits)); }
};

template <>
constexpr DType dtype_of<Float16>() { return DType::Float16; }
template <>
constexpr DType dtype_of<BFloat16>() { return DType::BFloat16; }

}  // namespace effnet
