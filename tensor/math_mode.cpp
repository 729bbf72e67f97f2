#include "tensor/math_mode.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace effnet {

namespace {
std::atomic<bool> g_allow_tf32{false};

bool env_is_1(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::strcmp(value, "1") == 0;
}

std::atomic<bool>& benchmark_switch() {
  static std::atomic<bool> on{env_is_1("EFFNET_CUDNN_BENCHMARK")};
  return on;
}
}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow, std::memory_order_relaxed); }
bool allow_tf32() { return g_allow_tf32.load(std::memory_order_relaxed); }

void set_cudnn_benchmark(bool on) { benchmark_switch().store(on, std::memory_order_relaxed); }
bool cudnn_benchmark() { return benchmark_switch().load(std::memory_order_relaxed); }

}  // namespace effnet
