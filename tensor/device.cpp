#include "tensor/device.h"

#include <cstdlib>

#include "tensor/error.h"

namespace effnet {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5) {
    const std::string digits = text.substr(5);
    if (digits.find_first_not_of("0123456789") == std::string::npos && digits.size() < 4) {
      return cuda(std::atoi(digits.c_str()));
    }
  }
  EFFNET_FAIL("unknown device '", text, "': expected cpu, cuda or cuda:N");
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

// With CUDA compiled in, tensor/cuda/context.cpp answers these.
#if !defined(EFFNET_WITH_CUDA)
bool cuda_compiled() { return false; }
bool cuda_available() { return false; }
int cuda_device_count() { return 0; }
#endif

}  // namespace effnet
