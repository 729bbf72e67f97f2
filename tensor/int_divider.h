// Division of 32-bit unsigned integers by a divisor that is fixed for a whole kernel, as a multiply-high, an
// add and a shift: GPUs have no integer divide instruction (a 32-bit division compiles to a sequence of about
// twenty instructions, a 64-bit one to many more), and a kernel that finds each element's channel by
// dividing its index would spend more time dividing than moving memory.
//
// Granlund and Montgomery, "Division by invariant integers using multiplication" (PLDI 1994): for a divisor
// d >= 1 let s = ceil(log2 d) and m = floor(2^32 (2^s - d) / d) + 1, which fits in 32 bits; then for every
// n < 2^32,  n / d = (mulhi(m, n) + n) >> s,  with the sum taken in 64 bits.
#pragma once

#include <cstdint>

#include "tensor/error.h"
#include "tensor/host_device.h"

namespace effnet {

struct IntDivider {
  uint32_t divisor = 1, multiplier = 1, shift = 0;

  IntDivider() = default;
  explicit IntDivider(uint32_t d) : divisor(d) {
    EFFNET_CHECK(d >= 1, "IntDivider: the divisor must be positive");
    while ((uint64_t{1} << shift) < d) ++shift;
    multiplier = static_cast<uint32_t>((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d) / d + 1);
  }

  EFFNET_HOST_DEVICE uint32_t divide(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t high = __umulhi(multiplier, n);
#else
    const uint32_t high = static_cast<uint32_t>((uint64_t{multiplier} * n) >> 32);
#endif
    return static_cast<uint32_t>((uint64_t{high} + n) >> shift);
  }

  EFFNET_HOST_DEVICE uint32_t remainder(uint32_t n) const { return n - divide(n) * divisor; }
};

}  // namespace effnet
