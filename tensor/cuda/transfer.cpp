// Copies between host memory and a CUDA device, queued on the device's context stream.
//
//   n        bytes to copy (both sides contiguous)
//   pinned   page-locked host memory: the copy engine reads and writes it directly, asynchronously
//   pageable ordinary host memory: the copy engine cannot reach it, so it moves through two pinned 8 MiB
//            staging chunks per device, alternating, so that the CPU's memcpy into (or out of) one chunk
//            overlaps the DMA of the other
//   done[c]  an event recorded after the last DMA that used chunk c; the CPU touches chunk c only after it
//
// Host to device returns once the copy is queued (the host buffer may be freed or reused at once: a pinned
// block is reused only after the stream passes its free, a pageable one was already drained into the
// chunks). Device to host returns once the data is on the host.
#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"

namespace effnet::cuda {
namespace {

constexpr size_t kChunkBytes = size_t{8} << 20;

struct Staging {
  std::mutex mutex;  // one transfer at a time uses the chunks
  std::array<std::shared_ptr<Storage>, 2> chunk;
  std::array<cudaEvent_t, 2> done{};
};

Staging& staging(int device) {
  // Never destroyed, like the contexts whose streams the events belong to.
  static auto* all = new std::array<std::unique_ptr<Staging>, kMaxDevices>;
  static std::mutex creation_mutex;
  std::lock_guard<std::mutex> lock(creation_mutex);
  std::unique_ptr<Staging>& slot = (*all)[device];
  if (slot == nullptr) {
    auto created = std::make_unique<Staging>();
    DeviceGuard guard(device);
    for (int c = 0; c < 2; ++c) {
      created->chunk[c] = allocate_pinned_host(kChunkBytes);
      EFFNET_CUDA_CHECK(cudaEventCreateWithFlags(&created->done[c], cudaEventDisableTiming));
    }
    slot = std::move(created);
  }
  return *slot;
}

void host_to_device_staged(Staging& s, char* dst, const char* src, size_t n, cudaStream_t stream) {
  for (size_t at = 0, i = 0; at < n; ++i) {
    size_t piece = std::min(kChunkBytes, n - at);
    int c = static_cast<int>(i % 2);
    EFFNET_CUDA_CHECK(cudaEventSynchronize(s.done[c]));
    std::memcpy(s.chunk[c]->data(), src + at, piece);
    EFFNET_CUDA_CHECK(cudaMemcpyAsync(dst + at, s.chunk[c]->data(), piece, cudaMemcpyHostToDevice, stream));
    EFFNET_CUDA_CHECK(cudaEventRecord(s.done[c], stream));
    at += piece;
  }
}

void device_to_host_staged(Staging& s, char* dst, const char* src, size_t n, cudaStream_t stream) {
  // Piece i lands in chunk i % 2; while its DMA runs, the CPU drains piece i - 1 from the other chunk, so a
  // chunk is always drained before the DMA after next overwrites it.
  struct Pending {
    size_t at, bytes;
    int chunk;
  };
  auto drain = [&](const Pending& p) {
    EFFNET_CUDA_CHECK(cudaEventSynchronize(s.done[p.chunk]));
    std::memcpy(dst + p.at, s.chunk[p.chunk]->data(), p.bytes);
  };
  Pending pending{0, 0, 0};
  for (size_t at = 0, i = 0; at < n; ++i) {
    size_t piece = std::min(kChunkBytes, n - at);
    int c = static_cast<int>(i % 2);
    EFFNET_CUDA_CHECK(cudaMemcpyAsync(s.chunk[c]->data(), src + at, piece, cudaMemcpyDeviceToHost, stream));
    EFFNET_CUDA_CHECK(cudaEventRecord(s.done[c], stream));
    if (i > 0) drain(pending);
    pending = {at, piece, c};
    at += piece;
  }
  drain(pending);
}

}  // namespace

void copy_with_host(const Tensor& dst, const Tensor& src) {
  EFFNET_CHECK(dst.is_cuda() != src.is_cuda(), "copy_with_host: expected one CPU and one CUDA tensor, got ",
               dst.str(), " and ", src.str());
  EFFNET_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel(),
               "copy_with_host: dtype and size must match, got ", dst.str(), " and ", src.str());
  const size_t n = static_cast<size_t>(dst.numel()) * element_size(dst.dtype());
  if (n == 0) return;
  EFFNET_CHECK(dst.is_contiguous() && src.is_contiguous(),
               "copy_with_host: both tensors must be contiguous, got ", dst.str(), " and ", src.str());

  int device = dst.is_cuda() ? dst.device().index : src.device().index;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  auto* to = static_cast<char*>(dst.data_ptr());
  const auto* from = static_cast<const char*>(src.data_ptr());
  if (dst.is_cuda()) {
    if (src.storage()->pinned()) {
      EFFNET_CUDA_CHECK(cudaMemcpyAsync(to, from, n, cudaMemcpyHostToDevice, ctx.stream));
    } else {
      Staging& s = staging(device);
      std::lock_guard<std::mutex> lock(s.mutex);
      host_to_device_staged(s, to, from, n, ctx.stream);
    }
  } else if (dst.storage()->pinned()) {
    EFFNET_CUDA_CHECK(cudaMemcpyAsync(to, from, n, cudaMemcpyDeviceToHost, ctx.stream));
    EFFNET_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  } else {
    Staging& s = staging(device);
    std::lock_guard<std::mutex> lock(s.mutex);
    device_to_host_staged(s, to, from, n, ctx.stream);
  }
}

void synchronize(Device device) {
  EFFNET_CHECK(device.is_cuda(), "cuda::synchronize: expected a CUDA device, got ", device);
  EFFNET_CUDA_CHECK(cudaStreamSynchronize(context(device.index).stream));
}

}  // namespace effnet::cuda
