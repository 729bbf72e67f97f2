#include "tensor/cpu/isa.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tensor/error.h"

namespace effnet::cpu {

namespace {

// The CPU's best set, or EFFNET_CPU_ISA's. Runs on first use, maybe inside an OpenMP region, so a bad value is
// a warning on stderr, not an exception.
Isa detected() {
  const Isa best = cpu_has_avx2() ? Isa::Avx2 : Isa::Baseline;
  const char* env = std::getenv("EFFNET_CPU_ISA");
  const std::string asked = env != nullptr ? env : "";
  if (asked.empty()) return best;
  if (asked == "baseline") return Isa::Baseline;
  if (asked == "avx2" && best == Isa::Avx2) return best;
  std::fprintf(stderr, "effnet: EFFNET_CPU_ISA=%s %s; using %s\n", asked.c_str(),
               asked == "avx2" ? "asks for AVX2, which this CPU does not have" : "is not 'baseline' or 'avx2'",
               best == Isa::Avx2 ? "avx2" : "baseline");
  return best;
}

std::atomic<Isa>& chosen() {
  static std::atomic<Isa> isa{detected()};
  return isa;
}

}  // namespace

bool cpu_has_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();  // (needed if this runs before the static constructors have)
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

Isa cpu_isa() { return chosen().load(std::memory_order_relaxed); }

void set_cpu_isa(Isa isa) {
  EFFNET_CHECK(isa == Isa::Baseline || cpu_has_avx2(), "set_cpu_isa: this CPU has no AVX2");
  chosen().store(isa, std::memory_order_relaxed);
}

}  // namespace effnet::cpu
