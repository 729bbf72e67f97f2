// The memory of a device's caching allocator (tensor/caching_allocator.h), for the CPU and CUDA alike:
// what torch.cuda.memory_stats, reset_peak_memory_stats, empty_cache and set_per_process_memory_fraction
// are to PyTorch. Each call goes through the dispatch table's `caching_allocator` entry.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/caching_allocator.h"
#include "tensor/device.h"

namespace effnet {

// Bytes in blocks handed out and in segments held, now and at most since the last reset.
AllocatorStats memory_stats(Device device);
void reset_peak_memory_stats(Device device);
// Gives every fully free cached segment back to the device.
void empty_cache(Device device);
// Never hold more than `bytes` (0 = no limit); past it, an allocation throws OutOfMemoryError as if the
// device were full: a smaller card, or the CPU, behaves like a full GPU.
void set_memory_limit(Device device, size_t bytes);
// The most bytes the allocator could hold: the limit when one is set, else what it holds plus the device's
// free memory (CUDA); 0 when unknown (the CPU without a limit).
size_t memory_capacity(Device device);
// Testing: the allocation after the next `after` ones on `device` throws OutOfMemoryError, once (-1 cancels).
void inject_out_of_memory(Device device, int64_t after);

}  // namespace effnet
