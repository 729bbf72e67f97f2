// A float32 exponential and sigmoid without library calls or branches, so that a loop calling them under
// `#pragma omp simd` compiles to vector instructions (glibc's expf is a call per element, which keeps a loop
// scalar). Used only where a caller asked for fused kernels (the CPU's batch norm + SiLU): the results
// differ from glibc's expf by about an ulp, so they equal the unfused ops' to rounding, not bit for bit.
//
//   exp(x) = 2^n e^r   with n = round(x / ln 2) and r = x - n ln 2, |r| <= ln 2 / 2 (Cody and Waite: ln 2 in
//            two parts, so that n ln 2 is exact in the high part); e^r by its Taylor series to r^7 (the next
//            term, r^8 / 8! < 6e-9, is below float32's half ulp of 6e-8); 2^n built in the exponent bits
//   x is clamped to [-87, 88], where 2^n stays a normal float: exp saturates at e^88 = 1.7e38 and e^-87
//   = 1.6e-38 instead of reaching inf and 0, which moves sigmoid by less than 1e-37. A NaN x gives NaN.
#pragma once

#include <cstdint>
#include <cstring>

namespace effnet::cpu {

inline float vector_exp(float x) {
  // Two selects that always run (a nested one would be a branch the vectorizer refuses: a comparison may
  // trap); a NaN becomes 88 here and is put back at the end.
  float clamped = x < 88.0f ? x : 88.0f;
  clamped = clamped > -87.0f ? clamped : -87.0f;
  // Round to the nearest integer by adding and subtracting 1.5 2^23 (SSE2 has no rounding instruction).
  const float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (clamped - n * 0.693359375f) - n * -2.12194440e-4f;  // ln 2 = 0.693359375 - 2.12194440e-4
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float result = p * scale;
  return x == x ? result : x;
}

inline float vector_sigmoid(float x) { return 1.0f / (1.0f + vector_exp(-x)); }

}  // namespace effnet::cpu
