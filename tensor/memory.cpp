#include "tensor/memory.h"

#include "tensor/backend.h"

namespace effnet {
namespace {

CachingAllocator& allocator_of(Device device) { return backend(device, "memory").caching_allocator(device); }

}  // namespace

AllocatorStats memory_stats(Device device) { return allocator_of(device).stats(); }
void reset_peak_memory_stats(Device device) { allocator_of(device).reset_peak_stats(); }
void empty_cache(Device device) { allocator_of(device).empty_cache(); }
void set_memory_limit(Device device, size_t bytes) { allocator_of(device).set_limit(bytes); }
size_t memory_capacity(Device device) { return allocator_of(device).capacity(); }
void inject_out_of_memory(Device device, int64_t after) { allocator_of(device).inject_out_of_memory(after); }

}  // namespace effnet
