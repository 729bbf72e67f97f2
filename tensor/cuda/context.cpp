// Lazily made per-device contexts (stream, cuBLAS, cuDNN) and the CUDA answers to effnet::cuda_available().
//
//   device   a CUDA device index, 0 <= device < cuda_device_count()
//   slot     one atomic pointer per possible device; a context, once published there, lives forever
#include "tensor/cuda/context.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/kernels.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace effnet {

bool cuda_compiled() { return true; }

int cuda_device_count() {
  // Asked once: the answer cannot change while the process runs, and a machine without a driver answers
  // with an error that must not escape (CPU-only use of a CUDA build is normal).
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();
      n = 0;
    }
    return n;
  }();
  return count;
}

bool cuda_available() { return cuda_device_count() > 0; }

}  // namespace effnet

namespace effnet::cuda {
namespace {

// cuBLAS on Hopper wants a user workspace for its split-K and stream-K kernels; 32 MiB is what NVIDIA
// recommends for sm_90.
constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

std::array<std::atomic<Context*>, kMaxDevices> g_contexts{};
std::mutex g_creation_mutex;

constexpr int64_t kDefaultMaxElementsPerCall = INT32_MAX;
std::atomic<int64_t> g_max_elements_per_call{kDefaultMaxElementsPerCall};

Context* create_context(int device) {
  DeviceGuard guard(device);
  auto ctx = std::make_unique<Context>();
  ctx->device = device;
  EFFNET_CUDA_CHECK(cudaGetDeviceProperties(&ctx->properties, device));
  EFFNET_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));

  EFFNET_CUBLAS_CHECK(cublasCreate(&ctx->cublas));
  EFFNET_CUBLAS_CHECK(cublasSetStream(ctx->cublas, ctx->stream));
  // Default math keeps fp32 GEMMs in full fp32 (no TF32), so results match the CPU backend to ~1e-5.
  EFFNET_CUBLAS_CHECK(cublasSetMathMode(ctx->cublas, CUBLAS_DEFAULT_MATH));
  void* cublas_workspace = device_allocator(device).allocate(kCublasWorkspaceBytes, ctx->stream);
  EFFNET_CUBLAS_CHECK(cublasSetWorkspace(ctx->cublas, cublas_workspace, kCublasWorkspaceBytes));

  EFFNET_CUDNN_CHECK(cudnnCreate(&ctx->cudnn));
  EFFNET_CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->stream));
  return ctx.release();
}

}  // namespace

int64_t max_elements_per_call() { return g_max_elements_per_call.load(std::memory_order_relaxed); }

void set_max_elements_per_call(int64_t elements) {
  EFFNET_CHECK(elements >= 0 && elements <= kDefaultMaxElementsPerCall, "set_max_elements_per_call: ", elements,
               " is outside [0, 2^31 - 1]");
  g_max_elements_per_call.store(elements == 0 ? kDefaultMaxElementsPerCall : elements, std::memory_order_relaxed);
}

void check_device(int device) {
  EFFNET_CHECK(device >= 0 && device < cuda_device_count() && device < kMaxDevices, "cuda:", device,
               " is not a usable device (", cuda_device_count(), " CUDA devices found)");
}

Context& context(int device) {
  check_device(device);
  Context* ctx = g_contexts[device].load(std::memory_order_acquire);
  if (ctx != nullptr) return *ctx;
  std::lock_guard<std::mutex> lock(g_creation_mutex);
  ctx = g_contexts[device].load(std::memory_order_relaxed);
  if (ctx == nullptr) {
    ctx = create_context(device);
    g_contexts[device].store(ctx, std::memory_order_release);
  }
  return *ctx;
}

std::vector<Context*> existing_contexts() {
  std::vector<Context*> contexts;
  for (auto& slot : g_contexts) {
    if (Context* ctx = slot.load(std::memory_order_acquire)) contexts.push_back(ctx);
  }
  return contexts;
}

DeviceGuard::DeviceGuard(int device) {
  EFFNET_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) {
    EFFNET_CUDA_CHECK(cudaSetDevice(device));
    changed_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  // A destructor must not throw; restoring a device that was current a moment ago does not fail.
  if (changed_) (void)cudaSetDevice(previous_);
}

}  // namespace effnet::cuda
