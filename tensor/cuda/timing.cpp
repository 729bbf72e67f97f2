#include "tensor/cuda/timing.h"

#include <cuda_runtime.h>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"

namespace effnet::cuda {

namespace {

// Owns one timing event (destroyed even when `work` throws).
struct Event {
  cudaEvent_t event = nullptr;
  Event() { EFFNET_CUDA_CHECK(cudaEventCreate(&event)); }
  ~Event() { (void)cudaEventDestroy(event); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

}  // namespace

double device_milliseconds(int device, const std::function<void()>& work) {
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  Event start, stop;
  EFFNET_CUDA_CHECK(cudaEventRecord(start.event, ctx.stream));
  work();
  EFFNET_CUDA_CHECK(cudaEventRecord(stop.event, ctx.stream));
  EFFNET_CUDA_CHECK(cudaEventSynchronize(stop.event));
  float ms = 0;
  EFFNET_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event, stop.event));
  return ms;
}

}  // namespace effnet::cuda
