// The caching allocator's logic, run against a host-memory fake device with a byte budget.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tensor/caching_allocator.h"
#include "tensor/error.h"

namespace effnet {
namespace {

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;

// What the fake device saw; owned by the test so it outlives the allocator that owns the fake.
struct FakeDevice {
  size_t budget = 0;  // 0 = unlimited
  size_t in_use = 0;
  int allocs = 0;
  int frees = 0;
  int syncs = 0;
  std::vector<size_t> segment_sizes;  // sizes of the successful raw allocations, in order
  std::unordered_map<void*, size_t> live;
};

class FakeRaw : public RawAllocator {
 public:
  explicit FakeRaw(FakeDevice& device) : device_(device) {}
  void* allocate(size_t bytes) override {
    if (device_.budget != 0 && device_.in_use + bytes > device_.budget) return nullptr;
    void* p = std::malloc(bytes);
    if (p == nullptr) return nullptr;
    ++device_.allocs;
    device_.in_use += bytes;
    device_.segment_sizes.push_back(bytes);
    device_.live[p] = bytes;
    return p;
  }
  void free(void* ptr) override {
    auto it = device_.live.find(ptr);
    ASSERT_NE(it, device_.live.end()) << "raw free of a pointer the fake never returned";
    ++device_.frees;
    device_.in_use -= it->second;
    device_.live.erase(it);
    std::free(ptr);
  }
  void synchronize() override { ++device_.syncs; }
  std::string describe() const override {
    return "fake device: " + std::to_string(device_.budget) + " budget";
  }
  size_t available() const override { return device_.budget == 0 ? 0 : device_.budget - device_.in_use; }

 private:
  FakeDevice& device_;
};

std::unique_ptr<CachingAllocator> make_allocator(FakeDevice& device) {
  return std::make_unique<CachingAllocator>(std::make_unique<FakeRaw>(device), "fake:0");
}

// Streams are opaque keys; any distinct addresses do.
int stream_a_key, stream_b_key, stream_c_key;
void* const kStreamA = &stream_a_key;
void* const kStreamB = &stream_b_key;
void* const kStreamC = &stream_c_key;

char* bytes_of(void* p) { return static_cast<char*>(p); }

TEST(CachingAllocator, ReusesFreedBlock) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  void* p = alloc->allocate(1000);
  EXPECT_EQ(alloc->stats().allocated, 1024u);  // rounded to 512 bytes
  alloc->free(p);
  EXPECT_EQ(alloc->stats().allocated, 0u);
  void* q = alloc->allocate(1000);
  EXPECT_EQ(q, p);
  AllocatorStats s = alloc->stats();
  EXPECT_EQ(s.allocations, 2u);
  EXPECT_EQ(s.cache_hits, 1u);
  EXPECT_EQ(s.segments_created, 1u);
  EXPECT_EQ(device.allocs, 1);
  EXPECT_EQ(s.reserved, 2 * MiB);
  alloc->free(q);
}

TEST(CachingAllocator, SplitsSmallSegment) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  char* a = bytes_of(alloc->allocate(1000));
  char* b = bytes_of(alloc->allocate(3000));
  ASSERT_EQ(device.allocs, 1);
  ASSERT_EQ(device.segment_sizes, std::vector<size_t>{2 * MiB});
  char* segment = bytes_of(device.live.begin()->first);
  EXPECT_EQ(a, segment);
  EXPECT_EQ(b, segment + 1024);
  EXPECT_EQ(alloc->stats().allocated, 1024u + 3072u);
  EXPECT_EQ(alloc->stats().reserved, 2 * MiB);
  EXPECT_EQ(alloc->stats().cache_hits, 1u);  // b came from the rest of a's segment
  alloc->free(a);
  alloc->free(b);
}

TEST(CachingAllocator, ZeroBytesGivesDistinctBlocks) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  void* a = alloc->allocate(0);
  void* b = alloc->allocate(0);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(bytes_of(b), bytes_of(a) + CachingAllocator::kRound);
  EXPECT_EQ(alloc->stats().allocated, 2 * CachingAllocator::kRound);
  alloc->free(a);
  alloc->free(b);
}

TEST(CachingAllocator, CoalescesFreeNeighbours) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  char* a = bytes_of(alloc->allocate(512 * KiB));
  char* b = bytes_of(alloc->allocate(512 * KiB));
  char* c = bytes_of(alloc->allocate(512 * KiB));
  ASSERT_EQ(b, a + 512 * KiB);
  ASSERT_EQ(c, b + 512 * KiB);
  // Freed, a and b merge into one 1 MiB block, which a 1 MiB request then reuses without a new segment.
  alloc->free(a);
  alloc->free(b);
  char* big = bytes_of(alloc->allocate(1 * MiB));
  EXPECT_EQ(big, a);
  EXPECT_EQ(device.allocs, 1);
  alloc->free(big);

  // Freeing the middle block last merges it with both neighbours: the segment becomes one free block,
  // which only then can empty_cache release.
  a = bytes_of(alloc->allocate(512 * KiB));
  b = bytes_of(alloc->allocate(512 * KiB));
  alloc->free(a);
  alloc->empty_cache();
  EXPECT_EQ(device.frees, 0);
  alloc->free(c);
  alloc->free(b);
  alloc->empty_cache();
  EXPECT_EQ(device.frees, 1);
  EXPECT_EQ(alloc->stats().reserved, 0u);
  EXPECT_EQ(device.in_use, 0u);
}

TEST(CachingAllocator, SplitsOnlyRestsLargerThanTheThreshold) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  // Small pool: a rest of exactly 512 bytes stays with the block.
  char* a = bytes_of(alloc->allocate(1 * MiB));
  char* b = bytes_of(alloc->allocate(1 * MiB - 512));
  EXPECT_EQ(b, a + 1 * MiB);
  EXPECT_EQ(alloc->stats().allocated, 2 * MiB);
  char* c = bytes_of(alloc->allocate(1));
  EXPECT_EQ(device.allocs, 2);  // the first segment has no room left
  // Large pool: a rest of exactly 1 MiB stays with the block; one of 1 MiB + 512 is split off.
  char* d = bytes_of(alloc->allocate(10 * MiB));
  char* e = bytes_of(alloc->allocate(9 * MiB));
  EXPECT_EQ(e, d + 10 * MiB);
  EXPECT_EQ(alloc->stats().allocated, 2 * MiB + 512 + 20 * MiB);
  alloc->free(e);
  e = bytes_of(alloc->allocate(9 * MiB - 512));
  EXPECT_EQ(alloc->stats().allocated, 2 * MiB + 512 + 10 * MiB + 9 * MiB - 512);
  EXPECT_EQ(device.allocs, 3);
  for (char* p : {a, b, c, d, e}) alloc->free(p);
}

TEST(CachingAllocator, KeepsStreamsApart) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  // 12 MiB blocks fill their segments exactly, so each stream's free blocks are just the ones freed here.
  // Both directions are checked: free blocks sort by stream address, and either stream may sort first.
  void* p = alloc->allocate(12 * MiB, kStreamA);
  alloc->free(p);
  void* q = alloc->allocate(12 * MiB, kStreamB);  // A's free block must not serve B
  EXPECT_NE(q, p);
  EXPECT_EQ(device.allocs, 2);
  EXPECT_EQ(alloc->stats().cache_hits, 0u);
  alloc->free(q);
  void* r = alloc->allocate(12 * MiB, kStreamA);
  EXPECT_EQ(r, p);
  EXPECT_EQ(alloc->stats().cache_hits, 1u);
  void* s = alloc->allocate(12 * MiB, kStreamA);  // B's free block must not serve A
  EXPECT_NE(s, q);
  EXPECT_EQ(device.allocs, 3);
  EXPECT_EQ(alloc->stats().cache_hits, 1u);
  alloc->free(r);
  alloc->free(s);
}

TEST(CachingAllocator, SizesLargeSegments) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  // Large: its own size rounded up to 2 MiB. The 1 MiB - 512 byte rest is too small to split off.
  void* c = alloc->allocate(11 * MiB + 1);
  EXPECT_EQ(alloc->stats().allocated, 12 * MiB);
  char* a = bytes_of(alloc->allocate(1 * MiB + 1));  // medium: a 20 MiB segment
  char* b = bytes_of(alloc->allocate(5 * MiB));      // fits in the rest of it
  EXPECT_EQ(b, a + 1 * MiB + 512);
  void* d = alloc->allocate(30 * MiB);
  EXPECT_EQ(device.segment_sizes, (std::vector<size_t>{12 * MiB, 20 * MiB, 30 * MiB}));
  AllocatorStats s = alloc->stats();
  EXPECT_EQ(s.reserved, 62 * MiB);
  EXPECT_EQ(s.allocated, 12 * MiB + (1 * MiB + 512) + 5 * MiB + 30 * MiB);
  EXPECT_EQ(s.segments_created, 3u);

  // A free large block is not used for a small request: small requests have their own pool.
  alloc->free(d);
  void* small = alloc->allocate(1000);
  EXPECT_EQ(device.segment_sizes.back(), 2 * MiB);
  // The freed 30 MiB block is the best fit for 25 MiB; the 5 MiB rest is split off (> 1 MiB).
  void* e = alloc->allocate(25 * MiB);
  EXPECT_EQ(e, d);
  EXPECT_EQ(device.allocs, 4);
  EXPECT_EQ(alloc->stats().allocated, s.allocated - 30 * MiB + 1024 + 25 * MiB);
  for (void* p : {c, static_cast<void*>(a), static_cast<void*>(b), small, e}) alloc->free(p);
}

TEST(CachingAllocator, EmptyCacheReleasesOnlyFullyFreeSegments) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  void* kept = alloc->allocate(1000);          // 2 MiB segment, stays partly in use
  void* dropped = alloc->allocate(4 * MiB);    // 20 MiB segment, freed below
  alloc->free(dropped);
  alloc->empty_cache();
  EXPECT_EQ(device.syncs, 1);
  EXPECT_EQ(device.frees, 1);
  EXPECT_EQ(alloc->stats().reserved, 2 * MiB);
  EXPECT_EQ(device.in_use, 2 * MiB);
  alloc->free(kept);
  alloc->empty_cache();
  EXPECT_EQ(device.frees, 2);
  EXPECT_EQ(alloc->stats().reserved, 0u);
  EXPECT_EQ(alloc->stats().allocated, 0u);
  EXPECT_TRUE(device.live.empty());
}

TEST(CachingAllocator, RetriesAfterReleasingTheCache) {
  FakeDevice device;
  device.budget = 24 * MiB;
  auto alloc = make_allocator(device);
  alloc->free(alloc->allocate(2 * MiB));  // leaves a cached, fully free 20 MiB segment
  ASSERT_EQ(device.in_use, 20 * MiB);
  // 22 MiB does not fit the cached block, and fits the budget only once the cached segment is gone.
  void* p = alloc->allocate(22 * MiB);
  ASSERT_NE(p, nullptr);
  AllocatorStats s = alloc->stats();
  EXPECT_EQ(s.oom_retries, 1u);
  EXPECT_EQ(s.segments_created, 2u);
  EXPECT_EQ(s.reserved, 22 * MiB);
  EXPECT_EQ(s.peak_reserved, 22 * MiB);
  EXPECT_EQ(device.syncs, 1);
  EXPECT_EQ(device.frees, 1);
  EXPECT_EQ(device.allocs, 2);
  EXPECT_EQ(device.segment_sizes, (std::vector<size_t>{20 * MiB, 22 * MiB}));
  alloc->free(p);
}

TEST(CachingAllocator, LimitActsLikeOutOfMemory) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  alloc->set_limit(3 * MiB);
  alloc->free(alloc->allocate(1000, kStreamA));
  // Stream B needs a second 2 MiB segment: past the limit until stream A's cached segment is released.
  void* b = alloc->allocate(1000, kStreamB);
  EXPECT_EQ(alloc->stats().oom_retries, 1u);
  EXPECT_EQ(device.frees, 1);
  EXPECT_EQ(alloc->stats().reserved, 2 * MiB);
  // Nothing is left to release for stream C.
  try {
    alloc->allocate(1000, kStreamC);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("limit 3.00 MiB (3145728 bytes)"), std::string::npos) << message;
  }
  EXPECT_EQ(alloc->stats().oom_retries, 2u);
  EXPECT_EQ(device.allocs, 2);  // the limit was checked before the device was asked
  alloc->set_limit(0);
  void* c = alloc->allocate(1000, kStreamC);
  EXPECT_EQ(alloc->stats().reserved, 4 * MiB);
  alloc->free(b);
  alloc->free(c);
}

TEST(CachingAllocator, InjectedOutOfMemoryFailsTheChosenAllocationOnce) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  alloc->inject_out_of_memory(2);
  void* a = alloc->allocate(1000);
  void* b = alloc->allocate(1000);
  try {
    alloc->allocate(1000);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what()).find("injected"), std::string::npos) << e.what();
  }
  void* c = alloc->allocate(1000);  // once only
  EXPECT_EQ(alloc->stats().allocated, 3 * 1024u);
  alloc->inject_out_of_memory(0);
  alloc->inject_out_of_memory(-1);  // cancelled
  void* d = alloc->allocate(1000);
  for (void* p : {a, b, c, d}) alloc->free(p);
}

TEST(CachingAllocator, CapacityIsTheLimitOrWhatIsHeldPlusTheDevicesFreeMemory) {
  FakeDevice unknown;
  auto host = make_allocator(unknown);
  EXPECT_EQ(host->capacity(), 0u) << "no limit and no free-memory count: unknown";
  host->set_limit(64 * MiB);
  EXPECT_EQ(host->limit(), 64 * MiB);
  EXPECT_EQ(host->capacity(), 64 * MiB);

  FakeDevice device;
  device.budget = 100 * MiB;
  auto alloc = make_allocator(device);
  EXPECT_EQ(alloc->capacity(), 100 * MiB);
  void* p = alloc->allocate(30 * MiB);
  alloc->free(p);  // cached: still held, still counted
  EXPECT_EQ(alloc->stats().reserved, 30 * MiB);
  EXPECT_EQ(alloc->capacity(), 100 * MiB);
  alloc->set_limit(50 * MiB);
  EXPECT_EQ(alloc->capacity(), 50 * MiB);
  alloc->set_limit(0);
  EXPECT_EQ(alloc->limit(), 0u);
  EXPECT_EQ(alloc->capacity(), 100 * MiB);
}

TEST(CachingAllocator, ImpossibleRequestThrowsWithDetails) {
  FakeDevice device;
  device.budget = 64 * MiB;
  auto alloc = make_allocator(device);
  void* held = alloc->allocate(1 * MiB + 1);
  try {
    alloc->allocate(size_t{1} << 30);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    std::string message = e.what();
    for (const char* part : {"fake:0", "1.00 GiB (1073741824 bytes)", "allocated", "reserved",
                             "1.00 MiB (1049088 bytes) allocated", "20.00 MiB (20971520 bytes) reserved",
                             "fake device: 67108864 budget"}) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing \"" << part << "\" in: " << message;
    }
  }
  EXPECT_EQ(device.syncs, 1);
  // The failure leaves the allocator usable and its accounting intact.
  AllocatorStats s = alloc->stats();
  EXPECT_EQ(s.allocated, 1 * MiB + 512);
  EXPECT_EQ(s.reserved, 20 * MiB);
  alloc->free(held);
  EXPECT_THROW(alloc->allocate(~size_t{0}), OutOfMemoryError);
}

TEST(CachingAllocator, FreeingUnknownPointerThrows) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  int not_ours = 0;
  std::ostringstream expected;
  expected << static_cast<void*>(&not_ours);
  try {
    alloc->free(&not_ours);
    FAIL() << "expected effnet::Error";
  } catch (const OutOfMemoryError&) {
    FAIL() << "an unknown pointer is not an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected.str()), std::string::npos) << e.what();
  }
  void* p = alloc->allocate(100);
  alloc->free(p);
  EXPECT_THROW(alloc->free(p), Error);  // double free
  EXPECT_THROW(alloc->free(bytes_of(p) + 512), Error);  // inside a segment but not a block start
}

TEST(CachingAllocator, TracksAndResetsPeaks) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  void* a = alloc->allocate(1 * MiB);
  void* b = alloc->allocate(1 * MiB);
  void* c = alloc->allocate(3 * MiB);
  alloc->free(a);
  alloc->free(b);
  AllocatorStats s = alloc->stats();
  EXPECT_EQ(s.allocated, 3 * MiB);
  EXPECT_EQ(s.peak_allocated, 5 * MiB);
  EXPECT_EQ(s.reserved, 22 * MiB);
  EXPECT_EQ(s.peak_reserved, 22 * MiB);
  alloc->free(c);
  alloc->empty_cache();
  s = alloc->stats();
  EXPECT_EQ(s.peak_allocated, 5 * MiB);
  EXPECT_EQ(s.peak_reserved, 22 * MiB);
  alloc->reset_peak_stats();
  s = alloc->stats();
  EXPECT_EQ(s.peak_allocated, 0u);
  EXPECT_EQ(s.peak_reserved, 0u);
  alloc->free(alloc->allocate(1000));
  EXPECT_EQ(alloc->stats().peak_allocated, 1024u);
  EXPECT_EQ(alloc->stats().peak_reserved, 2 * MiB);
}

// `requested` counts the bytes asked for; `allocated` the blocks, which are rounded up, and whole when a
// cached block is reused with less than 1 MiB to spare (too little to split off).
TEST(CachingAllocator, CountsTheBytesRequestedApartFromTheBlocks) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  void* small = alloc->allocate(1000);
  void* first = alloc->allocate(4 * MiB);  // one 20 MiB segment: 4 + 10 + 6 MiB
  void* middle = alloc->allocate(10 * MiB);
  void* last = alloc->allocate(6 * MiB);
  alloc->free(first);
  void* reused = alloc->allocate(3 * MiB + MiB / 2);  // the freed 4 MiB block, whole
  EXPECT_EQ(reused, first);
  AllocatorStats s = alloc->stats();
  EXPECT_EQ(s.requested, 1000 + 19 * MiB + MiB / 2);
  EXPECT_EQ(s.allocated, 1024 + 20 * MiB);
  alloc->free(small);
  alloc->free(middle);
  alloc->free(last);
  s = alloc->stats();
  EXPECT_EQ(s.requested, 3 * MiB + MiB / 2);
  EXPECT_EQ(s.allocated, 4 * MiB);
  alloc->free(reused);
  s = alloc->stats();
  EXPECT_EQ(s.requested, 0u);
  EXPECT_EQ(s.allocated, 0u);
}

TEST(CachingAllocator, DestructorReleasesEverySegment) {
  FakeDevice device;
  {
    auto alloc = make_allocator(device);
    alloc->allocate(1000);   // still allocated at destruction
    alloc->allocate(3 * MiB);
    alloc->free(alloc->allocate(40 * MiB));
    EXPECT_EQ(device.allocs, 3);
  }
  EXPECT_EQ(device.frees, 3);
  EXPECT_TRUE(device.live.empty());
  EXPECT_EQ(device.in_use, 0u);
}

TEST(CachingAllocator, ThreadsShareOneAllocator) {
  FakeDevice device;
  auto alloc = make_allocator(device);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&alloc, t] {
      std::vector<void*> held;
      for (int i = 0; i < 500; ++i) {
        held.push_back(alloc->allocate(static_cast<size_t>((i % 7 + 1) * 700 * (t + 1))));
        if (i % 3 == 2) {
          alloc->free(held.front());
          held.erase(held.begin());
        }
      }
      for (void* p : held) alloc->free(p);
    });
  }
  for (auto& thread : threads) thread.join();
  AllocatorStats s = alloc->stats();
  EXPECT_EQ(s.allocated, 0u);
  EXPECT_EQ(s.allocations, 2000u);
  alloc->empty_cache();
  EXPECT_EQ(alloc->stats().reserved, 0u);
  EXPECT_TRUE(device.live.empty());
}

// Nothing here is CUDA-specific: the CUDA allocator's tests live with the CUDA backend's tests.

}  // namespace
}  // namespace effnet
