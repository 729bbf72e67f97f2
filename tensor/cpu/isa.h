// The vector instruction set of the CPU backend's hottest loops: AVX2 where the CPU has it, else the x86-64
// baseline the library is built for (SSE2). Such a loop is written once, as a struct with a static `run`,
// and run_for_isa<Loop>(args...) calls a copy of it compiled for the instruction set in use, chosen at run
// time, so one binary runs on any x86-64 CPU and uses AVX2 where there is one.
//
// Only loops whose results cannot depend on the vector width may be dispatched: each value computed on its
// own (its own sum, if any, in a fixed order), with no `omp simd reduction` (the one thing that lets GCC
// reorder float sums) and no fused multiply-add (effnet is built with -ffp-contract=off, and the AVX2 copy
// does not enable FMA). The same input then gives the same bits either way, which tests/test_cpu_isa.cpp
// checks by running both. (OpenBLAS and libm choose their own kernels by CPU; they are not covered.)
// Not for loops with an OpenMP parallel region inside: dispatch from within the region.
#pragma once

namespace effnet::cpu {

enum class Isa { Baseline, Avx2 };

// The set in use: AVX2 when the CPU has it, unless EFFNET_CPU_ISA=baseline or set_cpu_isa said otherwise
// (EFFNET_CPU_ISA is read once, on first use; another value than baseline or avx2 is a warning on stderr).
Isa cpu_isa();
bool cpu_has_avx2();
// Chooses the set (tests, benchmarks); asking for AVX2 on a CPU without it throws.
void set_cpu_isa(Isa isa);

// EFFNET_LOOP_INLINE marks what a Loop's run calls, so that it is compiled into the AVX2 copy too (and
// EFFNET_LAMBDA_INLINE a lambda it passes on).
#if defined(__x86_64__) && defined(__GNUC__)
#define EFFNET_LOOP_INLINE __attribute__((always_inline)) inline
#define EFFNET_LAMBDA_INLINE __attribute__((always_inline))

template <class Loop, class... Args>
__attribute__((target("avx2"))) void run_avx2(Args... args) {
  Loop::run(args...);
}
#else
#define EFFNET_LOOP_INLINE inline
#define EFFNET_LAMBDA_INLINE
#endif

template <class Loop, class... Args>
void run_for_isa(Args... args) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_isa() == Isa::Avx2) return run_avx2<Loop>(args...);
#endif
  Loop::run(args...);
}

}  // namespace effnet::cpu
