// Per-device CUDA state: one stream that all effnet work on the device is queued on (so work is ordered
// and the caching allocator can reuse a freed block for the next request at once), the cuBLAS and cuDNN
// handles bound to it. (cuDNN's workspace is a caching-allocator block per call: tensor/cuda/conv.cpp.)
//
// A Context is made on the first use of its device and never destroyed: tensors freed during static
// destruction at exit may still need the stream, and destroying handles after the CUDA runtime has shut
// down crashes.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <vector>

namespace effnet::cuda {

// Device indices beyond this are refused (per-device state lives in fixed arrays of this size).
constexpr int kMaxDevices = 64;

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;  // non-blocking: never serialized with the legacy default stream
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cudaDeviceProp properties{};
};

// Throws unless `device` names a usable CUDA device.
void check_device(int device);

// The context of `device` (made on first use; thread-safe). Throws for an index outside [0, device count).
Context& context(int device);

// The contexts made so far (the pinned-memory allocator records its events on each one's stream).
std::vector<Context*> existing_contexts();

// Makes `device` current for the scope and restores the previous device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace effnet::cuda
