#include "tensor/cpu/libm_expf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "tensor/cpu/isa.h"

namespace effnet::cpu {
namespace {

#if defined(__x86_64__) && defined(__GNUC__)

// table[i] = the bits of 2^(i/32) rounded to float64, less i << 47, so that adding k << 47 puts k div 32
// into the exponent (computed with Python's decimal module at 60 digits, then rounded).
constexpr uint64_t kTable[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
// The constants below (32 / ln 2 and the cubic's coefficients) are Arm optimized-routines' (MIT license), as
// glibc carries them: the bits depend on them, so they cannot be fitted anew.
constexpr double kScale = 0x1.71547652b82fep+0 * 32;  // 32 / ln 2
constexpr double kShift = 0x1.8p+52;                  // adding it rounds to an integer
constexpr double kC0 = 0x1.c6af84b912394p-5 / 32 / 32 / 32;
constexpr double kC1 = 0x1.ebfce50fac4f3p-3 / 32 / 32;
constexpr double kC2 = 0x1.62e42ff0c52d6p-1 / 32;

// |x| < 88, as glibc tests it: on the bits (the exponent and top mantissa bits below 88's), so that NaN is
// outside and no floating-point comparison raises a flag.
inline bool in_main_path(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7fffffff) < 0x42b00000;
}

__attribute__((target("avx2,fma"))) void expf_copy(const float* __restrict x, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double xd = x[i];
    double kd = std::fma(kScale, xd, kShift);
    uint64_t k;
    std::memcpy(&k, &kd, sizeof k);
    kd -= kShift;
    const double r = std::fma(kScale, xd, -kd);
    const uint64_t bits = kTable[k % 32] + (k << 47);
    double s;
    std::memcpy(&s, &bits, sizeof s);
    const double y = std::fma(std::fma(kC0, r, kC1), r * r, std::fma(kC2, r, 1.0));
    out[i] = static_cast<float>(y * s);
  }
}

bool cpu_has_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("fma");
}

// Values across the copy's range; two that come out differently when r = z - k is not fused (the one contraction
// that shows in the result); and three that glibc 2.36 rounds the wrong way, which a correctly rounded expf
// (another libm) would not.
bool copy_matches_libm() {
  if (!cpu_has_avx2() || !cpu_has_fma()) return false;
  constexpr int kGrid = 4096;
  constexpr float kTelling[] = {0x1.04845ep+5f, -0x1.f8cbb2p+5f, -0x1.e5cf66p+5f, 0x1.3e226p+2f, 0x1.393b4cp+5f};
  constexpr int kSamples = kGrid + static_cast<int>(std::size(kTelling));
  float x[kSamples], copy[kSamples];
  for (int i = 0; i < kGrid; ++i) x[i] = -87.9f + 175.8f * static_cast<float>(i) / kGrid;  // the copy's |x| < 88
  std::copy(std::begin(kTelling), std::end(kTelling), x + kGrid);
  expf_copy(x, copy, kSamples);
  for (int i = 0; i < kSamples; ++i) {
    const float libm = ::expf(x[i]);
    if (std::memcmp(&libm, &copy[i], sizeof libm) != 0) return false;
  }
  return true;
}

#endif

}  // namespace

bool libm_expf_copy_usable() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool matches = copy_matches_libm();
  return matches && cpu_isa() == Isa::Avx2;
#else
  return false;
#endif
}

void libm_expf(const float* x, float* out, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (libm_expf_copy_usable()) {
    // Elements outside |x| < 88 are libm's; the copy gets 0 in their place, which raises no floating-point
    // flag (a select inside expf_copy's loop would keep GCC from vectorizing it).
    constexpr int64_t kChunk = 256;
    float in_range[kChunk];
    for (int64_t first = 0; first < n; first += kChunk) {
      const int64_t count = std::min(kChunk, n - first);
      for (int64_t j = 0; j < count; ++j) in_range[j] = in_main_path(x[first + j]) ? x[first + j] : 0.0f;
      expf_copy(in_range, out + first, count);
      for (int64_t j = 0; j < count; ++j) {
        if (!in_main_path(x[first + j])) out[first + j] = ::expf(x[first + j]);  // glibc's other paths
      }
    }
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = ::expf(x[i]);
}

}  // namespace effnet::cpu
