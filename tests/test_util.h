// Shared helpers for the test suite.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/error.h"

namespace effnet::test {

// True where the CUDA tests must run: EFFNET_REQUIRE_CUDA=1 (scripts/device_check.sh sets it), so that a
// missing GPU there is a failure and not a silent skip.
inline bool cuda_required() {
  const char* v = std::getenv("EFFNET_REQUIRE_CUDA");
  return v != nullptr && std::string(v) == "1";
}

// The devices a device-generic test runs on: the CPU, plus cuda:0 when present.
inline std::vector<Device> test_devices() {
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available()) devices.push_back(Device::cuda(0));
  return devices;
}

// The message of the effnet::Error that f() throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace effnet::test

// First statement of every CUDA test: skips with a reason on machines without a GPU (and without CUDA
// compiled in), fails instead when EFFNET_REQUIRE_CUDA=1.
#define EFFNET_REQUIRE_CUDA_OR_SKIP()                                                              \
  do {                                                                                             \
    if (!::effnet::cuda_available()) {                                                             \
      if (::effnet::test::cuda_required()) FAIL() << "EFFNET_REQUIRE_CUDA=1 but no CUDA device is usable"; \
      GTEST_SKIP() << "no CUDA device (effnet built "                                              \
                   << (::effnet::cuda_compiled() ? "with" : "without") << " CUDA)";                \
    }                                                                                              \
  } while (0)
