// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
// generator. Random number i of a fill is a pure function of (seed, offset + i), so the CPU loop and the
// CUDA kernel produce the same bits for the same element, whatever the thread layout.
//
//   key     = seed (two 32-bit words)
//   counter = (element index + offset) as a 128-bit number
//   10 rounds of: two 32x32->64 multiplications, xor with the key, key += Weyl constants
//
// Conversions to floats (shared by both backends):
//   uniform float32  = (word >> 8) * 2^-24                    in [0, 1)
//   uniform float64  = ((w0 << 21) ^ (w1 >> 11)) * 2^-53      in [0, 1)
//   normal           = Box-Muller: sqrt(-2 ln(1 - u1)) * cos(2 pi u2)
//   then low + (high - low) u, or mean + std z, in double, rounded once to the tensor's dtype
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/host_device.h"

namespace effnet::philox {

struct Words {
  uint32_t w[4];
};

EFFNET_HOST_DEVICE inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t product = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(product >> 32);
  return static_cast<uint32_t>(product);
}

EFFNET_HOST_DEVICE inline Words generate(uint64_t seed, uint64_t counter) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(kMul0, c0, &hi0);
    uint32_t lo1 = mulhilo(kMul1, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return {{c0, c1, c2, c3}};
}

EFFNET_HOST_DEVICE inline float uniform_float(uint32_t w) { return static_cast<float>(w >> 8) * (1.0f / 16777216.0f); }

EFFNET_HOST_DEVICE inline double uniform_double(uint32_t w0, uint32_t w1) {
  uint64_t bits = (static_cast<uint64_t>(w0) << 21) ^ (w1 >> 11);
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}

// One sample per element from its four words; T = float or double. float32 takes the leading bits of the
// words that float64 uses (w0 for u1, w2 for u2), so a float32 fill is the float64 fill to float precision.
template <class T>
EFFNET_HOST_DEVICE inline T sample_uniform(const Words& r) {
  if constexpr (sizeof(T) == 4) return uniform_float(r.w[0]);
  else return uniform_double(r.w[0], r.w[1]);
}

template <class T>
EFFNET_HOST_DEVICE inline T sample_normal(const Words& r) {
  constexpr double kTwoPi = 6.283185307179586;
  if constexpr (sizeof(T) == 4) {
    const float u1 = uniform_float(r.w[0]), u2 = uniform_float(r.w[2]);
    return ::sqrtf(-2.0f * ::logf(1.0f - u1)) * ::cosf(static_cast<float>(kTwoPi) * u2);
  } else {
    const double u1 = uniform_double(r.w[0], r.w[1]), u2 = uniform_double(r.w[2], r.w[3]);
    return ::sqrt(-2.0 * ::log(1.0 - u1)) * ::cos(kTwoPi * u2);
  }
}

// a + b * c, rounded twice (never fused into one FMA), so host and device give the same bits.
EFFNET_HOST_DEVICE inline double add_mul(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, __dmul_rn(b, c));
#else
  return a + b * c;
#endif
}

EFFNET_HOST_DEVICE inline float next_below(float x, float toward) { return ::nextafterf(x, toward); }
EFFNET_HOST_DEVICE inline double next_below(double x, double toward) { return ::nextafter(x, toward); }

// Uniform in [low, high): computed in double, rounded once to T; a value that rounds up to high is
// pulled back to the largest T below it.
template <class T>
EFFNET_HOST_DEVICE inline T uniform_between(const Words& r, double low, double high) {
  const T value = static_cast<T>(add_mul(low, high - low, static_cast<double>(sample_uniform<T>(r))));
  const T top = static_cast<T>(high);
  return value < top || low >= high ? value : next_below(top, static_cast<T>(low));
}

template <class T>
EFFNET_HOST_DEVICE inline T normal_with(const Words& r, double mean, double std) {
  return static_cast<T>(add_mul(mean, std, static_cast<double>(sample_normal<T>(r))));
}

}  // namespace effnet::philox
