// Random number generation. A Generator is a Philox key (the seed) and a counter (the offset): a fill of n
// elements uses counters [offset, offset + n) and advances the offset by n. Because element i's numbers
// depend only on (seed, offset + i), CPU and CUDA fills from the same generator state are identical, and
// independent streams (one per data-loader sample, say) are just generators with their own seeds.
#pragma once

#include <cstdint>
#include <mutex>

namespace effnet {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  void manual_seed(uint64_t seed);
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset);  // for checkpoints: (seed, offset) is the whole state
  // Reserves `count` counters and returns the first one (thread-safe).
  uint64_t advance(uint64_t count);

 private:
  mutable std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The generator used when none is passed. Seeded with 0 until manual_seed is called.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace effnet
