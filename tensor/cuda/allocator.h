// Memory for CUDA tensors: device memory through one caching allocator per device (tensor/caching_allocator.h
// over cudaMalloc/cudaFree), and page-locked host memory, which the GPU copies from without staging.
#pragma once

#include <cstddef>
#include <memory>

#include "tensor/caching_allocator.h"
#include "tensor/device.h"
#include "tensor/storage.h"

namespace effnet::cuda {

// The caching allocator of `device` (made on first use, never destroyed).
CachingAllocator& device_allocator(int device);
CachingAllocator& caching_allocator(Device device);  // the dispatch table's entry: device_allocator(index)

// A Storage on `device` whose bytes go back to the cache when the last tensor viewing it is gone. Blocks
// belong to the device's context stream.
std::shared_ptr<Storage> allocate(size_t nbytes, Device device);

AllocatorStats memory_stats(int device);
void empty_cache(int device);
void set_memory_limit(int device, size_t bytes);  // 0 = no limit
void reset_peak_memory_stats(int device);

// Page-locked host memory (a CPU Storage with pinned() true). A freed block is kept for reuse, and handed
// out again only once every context stream has passed the point where it was freed, so an asynchronous
// copy from it that is still queued never sees new data.
std::shared_ptr<Storage> allocate_pinned_host(size_t nbytes);

}  // namespace effnet::cuda
