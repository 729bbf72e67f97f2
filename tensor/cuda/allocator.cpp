// Device memory: the caching allocator (tensor/caching_allocator.h) over cudaMalloc/cudaFree, one per device.
// Pinned host memory: cudaHostAlloc blocks cached by size class.
//
//   size class   a pinned request rounded up to a power of two (at least 512 bytes), so that a freed block
//                fits the many later requests of similar size (staging buffers, data-loader batches)
//   free events  one CUDA event per existing context, recorded on its stream when a pinned block is freed;
//                the block is reused only when every one has completed, i.e. when no copy queued before
//                the free can still read or write it
#include "tensor/cuda/allocator.h"

#include <array>
#include <atomic>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/error.h"

namespace effnet::cuda {
namespace {

class CudaRawAllocator final : public RawAllocator {
 public:
  explicit CudaRawAllocator(int device) : device_(device) {}

  void* allocate(size_t bytes) override {
    DeviceGuard guard(device_);
    void* ptr = nullptr;
    cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // not sticky: the caching allocator frees its cache and retries
      return nullptr;
    }
    if (status != cudaSuccess) detail::throw_cuda_error(status, "cudaMalloc", __FILE__, __LINE__);
    return ptr;
  }

  void free(void* ptr) override {
    DeviceGuard guard(device_);
    EFFNET_CUDA_CHECK(cudaFree(ptr));
  }

  void synchronize() override {
    DeviceGuard guard(device_);
    EFFNET_CUDA_CHECK(cudaDeviceSynchronize());
  }

  size_t available() const override {
    DeviceGuard guard(device_);
    size_t free_bytes = 0, total_bytes = 0;
    EFFNET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    return free_bytes;
  }

  std::string describe() const override {
    std::ostringstream os;
    os << "cuda:" << device_ << ": ";
    // Part of an out-of-memory message: a failure here must not replace that error with another.
    try {
      DeviceGuard guard(device_);
      size_t free_bytes = 0, total_bytes = 0;
      EFFNET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
      os << std::fixed << std::setprecision(2) << static_cast<double>(free_bytes) / kGiB << " GiB free of "
         << static_cast<double>(total_bytes) / kGiB << " GiB";
    } catch (const Error&) {
      os << "free memory unknown";
    }
    return os.str();
  }

 private:
  int device_;
};

std::array<std::atomic<CachingAllocator*>, kMaxDevices> g_allocators{};
std::mutex g_allocators_mutex;

class PinnedHostAllocator {
 public:
  void* allocate(size_t nbytes) {
    size_t size = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<FreeBlock>& cached = free_[size];
    for (size_t i = 0; i < cached.size(); ++i) {
      if (!completed(cached[i])) continue;
      std::swap(cached[i], cached.back());
      FreeBlock block = std::move(cached.back());
      cached.pop_back();
      recycle(block.events);
      live_[block.ptr] = size;
      return block.ptr;
    }
    void* ptr = host_alloc(size);
    if (ptr == nullptr) {
      release_completed();
      ptr = host_alloc(size);
    }
    if (ptr == nullptr)
      throw OutOfMemoryError(effnet::detail::concat("pinned host memory: cudaHostAlloc of ", size,
                                                    " bytes failed (", nbytes, " requested)"));
    live_[ptr] = size;
    return ptr;
  }

  void free(void* ptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    EFFNET_CHECK(it != live_.end(), "pinned host memory: free of a pointer it did not allocate");
    FreeBlock block{ptr, {}};
    for (Context* ctx : existing_contexts()) {
      DeviceGuard guard(ctx->device);
      Event event{ctx->device, take_event(ctx->device)};
      EFFNET_CUDA_CHECK(cudaEventRecord(event.event, ctx->stream));
      block.events.push_back(event);
    }
    free_[it->second].push_back(std::move(block));
    live_.erase(it);
  }

 private:
  struct Event {
    int device;
    cudaEvent_t event;
  };
  struct FreeBlock {
    void* ptr;
    std::vector<Event> events;
  };

  static size_t size_class(size_t nbytes) {
    size_t size = 512;
    while (size < nbytes) size <<= 1;
    return size;
  }

  static void* host_alloc(size_t size) {
    void* ptr = nullptr;
    // Portable: usable for copies to and from every device, not only the current one.
    cudaError_t status = cudaHostAlloc(&ptr, size, cudaHostAllocPortable);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;
    }
    if (status != cudaSuccess) detail::throw_cuda_error(status, "cudaHostAlloc", __FILE__, __LINE__);
    return ptr;
  }

  static bool completed(const FreeBlock& block) {
    for (const Event& event : block.events) {
      cudaError_t status = cudaEventQuery(event.event);
      if (status == cudaErrorNotReady) {
        (void)cudaGetLastError();  // "not ready" is an answer, not a failure to report later
        return false;
      }
      if (status != cudaSuccess) detail::throw_cuda_error(status, "cudaEventQuery", __FILE__, __LINE__);
    }
    return true;
  }

  cudaEvent_t take_event(int device) {
    for (size_t i = 0; i < idle_events_.size(); ++i) {
      if (idle_events_[i].device != device) continue;
      cudaEvent_t event = idle_events_[i].event;
      std::swap(idle_events_[i], idle_events_.back());
      idle_events_.pop_back();
      return event;
    }
    cudaEvent_t event = nullptr;
    EFFNET_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    return event;
  }

  void recycle(std::vector<Event>& events) {
    idle_events_.insert(idle_events_.end(), events.begin(), events.end());
    events.clear();
  }

  // Gives the cached blocks that no queued copy can touch any more back to the system.
  void release_completed() {
    for (auto& [size, cached] : free_) {
      for (size_t i = 0; i < cached.size();) {
        if (!completed(cached[i])) {
          ++i;
          continue;
        }
        EFFNET_CUDA_CHECK(cudaFreeHost(cached[i].ptr));
        recycle(cached[i].events);
        std::swap(cached[i], cached.back());
        cached.pop_back();
      }
    }
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<FreeBlock>> free_;  // size class -> blocks freed by tensors
  std::unordered_map<void*, size_t> live_;                   // pointer handed out -> its size class
  std::vector<Event> idle_events_;                           // recorded, completed, ready to record again
};

// Never destroyed, like the contexts: pinned tensors may be freed during static destruction.
PinnedHostAllocator& pinned_allocator() {
  static auto* allocator = new PinnedHostAllocator;
  return *allocator;
}

}  // namespace

CachingAllocator& device_allocator(int device) {
  check_device(device);
  CachingAllocator* allocator = g_allocators[device].load(std::memory_order_acquire);
  if (allocator != nullptr) return *allocator;
  std::lock_guard<std::mutex> lock(g_allocators_mutex);
  allocator = g_allocators[device].load(std::memory_order_relaxed);
  if (allocator == nullptr) {
    auto raw = std::make_unique<CudaRawAllocator>(device);
    allocator = new CachingAllocator(std::move(raw), "cuda:" + std::to_string(device));
    g_allocators[device].store(allocator, std::memory_order_release);
  }
  return *allocator;
}

CachingAllocator& caching_allocator(Device device) {
  EFFNET_CHECK(device.is_cuda(), "cuda::caching_allocator: expected a CUDA device, got ", device);
  return device_allocator(device.index);
}

std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
  EFFNET_CHECK(device.is_cuda(), "cuda::allocate: expected a CUDA device, got ", device);
  CachingAllocator& allocator = device_allocator(device.index);
  void* ptr = allocator.allocate(nbytes, context(device.index).stream);
  return std::make_shared<Storage>(ptr, nbytes, device, [&allocator](void* p) { allocator.free(p); });
}

AllocatorStats memory_stats(int device) { return device_allocator(device).stats(); }
void empty_cache(int device) { device_allocator(device).empty_cache(); }
void set_memory_limit(int device, size_t bytes) { device_allocator(device).set_limit(bytes); }
void reset_peak_memory_stats(int device) { device_allocator(device).reset_peak_stats(); }

std::shared_ptr<Storage> allocate_pinned_host(size_t nbytes) {
  PinnedHostAllocator& allocator = pinned_allocator();
  void* ptr = allocator.allocate(nbytes);
  auto deleter = [&allocator](void* p) {
    // Runs in a destructor, possibly at exit after the CUDA runtime has unloaded (event records fail
    // then): leaking the block is the only safe answer to a failure here.
    try {
      allocator.free(p);
    } catch (const Error&) {
    }
  };
  return std::make_shared<Storage>(ptr, nbytes, Device::cpu(), deleter, /*pinned=*/true);
}

}  // namespace effnet::cuda
