// The one place that maps a device to its row of kernels.
#include "tensor/backend.h"

#if defined(EFFNET_WITH_CUDA)
#include "tensor/cuda/profiler.h"
#endif

namespace effnet {

const Backend& backend(Device device, const char* op) {
  switch (device.type) {
    case DeviceType::CPU: return cpu_backend();
    case DeviceType::CUDA:
#if defined(EFFNET_WITH_CUDA)
      return cuda::profiling() ? cuda::profiled_backend() : cuda_backend();
#else
      EFFNET_FAIL(op, ": tensor is on ", device.str(),
                  " but effnet was built without CUDA (configure with -DEFFNET_CUDA=ON on a machine with nvcc, "
                  "cuDNN and cuBLAS)");
#endif
  }
  EFFNET_FAIL(op, ": unknown device type");
}

}  // namespace effnet
