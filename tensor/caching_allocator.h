// A caching allocator for device memory, after PyTorch's CUDACachingAllocator, written for any device
// that can allocate, free and synchronize (RawAllocator). The CUDA backend plugs cudaMalloc/cudaFree in
// (tensor/cuda/allocator.cpp); the tests plug in a host-memory fake with a byte budget, so the caching
// logic is tested on every machine.
//
// Why: cudaMalloc and cudaFree synchronize the device and cost 10-100 us; a training step allocates
// hundreds of activations. So freed blocks are kept and reused.
//
//   segment   one raw allocation (cudaMalloc), split into consecutive blocks
//   block     a piece of a segment, allocated to one tensor or free (cached)
//   pools     small requests (<= 1 MiB) are carved from 2 MiB segments; larger ones from segments of
//             20 MiB (requests up to 10 MiB) or of their own size rounded up to 2 MiB
//   stream    a block belongs to the stream it was allocated for and is only reused for that stream:
//             work queued on one stream runs in order, so a freed block is safe to hand out again at once
//             to the same stream, never to another
//
// allocate(): round the size up to 512 bytes; take the smallest free block of the pool and stream that
// fits (best fit); split off the rest when it is large enough to be useful (over 512 bytes in the small
// pool, over 1 MiB in the large); else make a new segment. When the raw allocation fails (or would pass
// the limit), release every fully free segment (after synchronizing) and retry once; if that fails too,
// throw OutOfMemoryError stating the bytes requested, allocated and reserved.
// free(): mark the block free and merge it with free neighbours of the same segment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace effnet {

// The device's own allocation calls.
class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  // Returns nullptr when the device is out of memory (never throws for that).
  virtual void* allocate(size_t bytes) = 0;
  virtual void free(void* ptr) = 0;
  // Waits until no queued work can still touch memory about to be released.
  virtual void synchronize() = 0;
  // A line about the device's memory for error messages, e.g. "device: 1.2 GiB free of 79.1 GiB".
  virtual std::string describe() const { return ""; }
  // Bytes the device could still give (cudaMemGetInfo's free memory); 0 where unknown.
  virtual size_t available() const { return 0; }
};

struct AllocatorStats {
  size_t allocated = 0;       // bytes in blocks handed out (rounded sizes)
  size_t requested = 0;       // bytes asked for by the blocks handed out (before rounding; the tensors' own)
  size_t reserved = 0;        // bytes in segments held from the device (allocated + cached)
  size_t peak_allocated = 0;
  size_t peak_reserved = 0;
  uint64_t allocations = 0;   // allocate() calls
  uint64_t segments_created = 0;  // raw allocations made
  uint64_t cache_hits = 0;        // allocate() calls served from a cached block
  uint64_t oom_retries = 0;       // times the cache was released to retry a failed raw allocation
};

class CachingAllocator {
 public:
  static constexpr size_t kRound = 512;
  static constexpr size_t kSmallRequest = 1 << 20;     // <= 1 MiB: small pool
  static constexpr size_t kSmallSegment = 2 << 20;     // 2 MiB
  static constexpr size_t kMediumRequest = 10 << 20;   // <= 10 MiB: 20 MiB segments
  static constexpr size_t kMediumSegment = 20 << 20;
  static constexpr size_t kLargeRound = 2 << 20;       // larger: rounded up to 2 MiB

  // `device_name` ("cuda:0") appears in error messages.
  CachingAllocator(std::unique_ptr<RawAllocator> raw, std::string device_name);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // `stream` is an opaque key (a cudaStream_t); 0 bytes gives a valid unique pointer of one 512-byte block.
  void* allocate(size_t bytes, void* stream = nullptr);
  // Pointers not made by this allocator throw effnet::Error.
  void free(void* ptr);
  // Returns every fully free segment to the device.
  void empty_cache();
  // Never hold more than `bytes` in segments (0 = no limit). Exceeding it counts as out of memory.
  void set_limit(size_t bytes);
  size_t limit() const;
  // Testing: the allocate() call after the next `after` ones throws OutOfMemoryError as a full device would,
  // once (-1 cancels). Lets a test run out of memory at any chosen point of a training step.
  void inject_out_of_memory(int64_t after);
  // The most bytes the segments could reach: the limit when set, else what they hold plus the device's
  // available memory; 0 when neither is known (host memory without a limit).
  size_t capacity() const;
  AllocatorStats stats() const;
  void reset_peak_stats();

 private:
  struct Block;
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeList = std::set<Block*, BlockOrder>;

  Block* find_free_block(FreeList& pool, size_t size, void* stream);
  Block* new_segment(FreeList& pool, size_t segment_size, void* stream);
  void release_free_segments();  // caller holds the lock and has synchronized
  void split(FreeList& pool, Block* block, size_t size);
  FreeList& pool_for(size_t size);
  std::string oom_message(size_t requested) const;

  mutable std::mutex mutex_;
  std::unique_ptr<RawAllocator> raw_;
  std::string device_name_;
  size_t limit_ = 0;
  int64_t injected_failure_in_ = -1;  // allocate() calls until the injected failure; -1: none
  FreeList small_free_, large_free_;
  std::unordered_map<void*, Block*> allocated_;  // pointer -> its block
  std::set<Block*> segment_heads_;             // first block of every segment
  AllocatorStats stats_;
};

}  // namespace effnet
