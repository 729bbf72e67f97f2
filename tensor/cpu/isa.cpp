#include "tensor/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "tensor/error.h"

namespace effnet::cpu {

namespace {

Isa detected() {
  const char* env = std::getenv("EFFNET_CPU_ISA");
  if (env != nullptr && std::string(env) == "baseline") return Isa::Baseline;
  return cpu_has_avx2() ? Isa::Avx2 : Isa::Baseline;
}

std::atomic<Isa>& chosen() {
  static std::atomic<Isa> isa{detected()};
  return isa;
}

}  // namespace

bool cpu_has_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
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
