// glibc's expf as a loop that vectorizes, with glibc's bits. The sigmoid-based elementwise ops
// (tensor/cpu/elementwise.cpp) must give the bits they always gave, which come from glibc's expf, a call per
// element that keeps their loops scalar. On x86-64 CPUs with AVX2 and FMA, glibc 2.36 (Debian 12) computes
// expf like this (the algorithm of Arm's optimized-routines):
//
//   z = x 32/ln2 (float64);  k = round(z) (by adding and subtracting 1.5 2^52, which leaves k in the low bits);
//   r = z - k, in [-1/2, 1/2];  2^(k/32) = 2^(k div 32) * table[k mod 32], the table holding 2^(i/32)
//   exp(x) = 2^(k/32) 2^(r/32) ~= s (C0 r^3 + C1 r^2 + C2 r + 1), rounded once to float
//
// compiled with every multiply-add contracted into an FMA, which this copy writes out with std::fma. Outside
// |x| < 88 (overflow, underflow, infinities, NaN) glibc takes other paths: those elements are left to it.
//
// Whether this libm computes expf so is checked once, on a sample that tells the contractions apart
// (copy_matches_libm in the .cpp); where it does not (another libm, or a CPU without FMA, where glibc's own copy has no
// FMA), the callers keep calling expf. Against glibc 2.36 on an AMD EPYC, all 2,237,661,184 floats with
// |x| < 88 gave the same bits (docs/performance.md).
#pragma once

#include <cstdint>

namespace effnet::cpu {

// True when the CPU has AVX2 and FMA, effnet's AVX2 loops are in use (isa.h) and this copy gave libm's bits
// on the check's sample (computed once).
bool libm_expf_copy_usable();

// out[i] = expf(x[i]) for i < n with libm's bits: this copy where usable (its AVX2+FMA build), else expf.
// x and out must not overlap.
void libm_expf(const float* x, float* out, int64_t n);

}  // namespace effnet::cpu
