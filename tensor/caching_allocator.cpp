// The caching allocator; tensor/caching_allocator.h describes the policy.
#include "tensor/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <limits>
#include <sstream>
#include <utility>

#include "tensor/error.h"

namespace effnet {

// One piece of a segment. The blocks of a segment form a list in address order (prev/next), so a freed
// block finds its neighbours without searching.
struct CachingAllocator::Block {
  char* ptr = nullptr;
  size_t size = 0;
  size_t requested = 0;  // while allocated: the bytes asked for
  void* stream = nullptr;
  FreeList* pool = nullptr;  // where the block goes while free
  bool allocated = false;
  Block* prev = nullptr;
  Block* next = nullptr;
};

namespace {

// Past this, rounding up would overflow; no device has that much memory anyway.
constexpr size_t kMaxRequest = std::numeric_limits<size_t>::max() / 2;

size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

size_t segment_size_for(size_t size) {
  if (size <= CachingAllocator::kSmallRequest) return CachingAllocator::kSmallSegment;
  if (size <= CachingAllocator::kMediumRequest) return CachingAllocator::kMediumSegment;
  return round_up(size, CachingAllocator::kLargeRound);
}

// "1.50 GiB (1610612736 bytes)": the unit for reading, the exact count for checking.
std::string format_bytes(size_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  std::ostringstream os;
  if (bytes < 1024) {
    os << bytes << " bytes";
    return os.str();
  }
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char number[32];
  std::snprintf(number, sizeof(number), "%.2f", value);
  os << number << ' ' << kUnits[unit] << " (" << bytes << " bytes)";
  return os.str();
}

uintptr_t address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

// Free blocks sort by stream, then size, then address: the blocks of one stream are contiguous and a
// lower_bound on (stream, size) finds the best fit.
bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return address(a->stream) < address(b->stream);
  if (a->size != b->size) return a->size < b->size;
  return address(a->ptr) < address(b->ptr);
}

CachingAllocator::CachingAllocator(std::unique_ptr<RawAllocator> raw, std::string device_name)
    : raw_(std::move(raw)), device_name_(std::move(device_name)) {
  EFFNET_CHECK(raw_ != nullptr, "CachingAllocator for ", device_name_, ": the raw allocator is null");
}

CachingAllocator::~CachingAllocator() {
  // This can run at program exit while the device is shutting down: release what can be released and
  // never throw. Blocks still handed out are released too; their owners outlived the allocator.
  try {
    raw_->synchronize();
  } catch (...) {
  }
  for (Block* head : segment_heads_) {
    void* segment = head->ptr;
    for (Block* block = head; block != nullptr;) {
      Block* next = block->next;
      delete block;
      block = next;
    }
    try {
      raw_->free(segment);
    } catch (...) {
    }
  }
}

void* CachingAllocator::allocate(size_t bytes, void* stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  if (injected_failure_in_ >= 0 && injected_failure_in_-- == 0) {
    throw OutOfMemoryError(oom_message(bytes) + " (injected by a test)");
  }
  if (bytes > kMaxRequest) throw OutOfMemoryError(oom_message(bytes));
  // A 0-byte request still gets a block of its own, so every pointer handed out is unique.
  const size_t size = std::max(round_up(bytes, kRound), kRound);
  FreeList& pool = pool_for(size);

  Block* block = find_free_block(pool, size, stream);
  if (block != nullptr) {
    ++stats_.cache_hits;
  } else {
    const size_t segment_size = segment_size_for(size);
    block = new_segment(pool, segment_size, stream);
    if (block == nullptr) {
      // The cache may hold the memory we need in segments nobody uses: give those back and try again.
      ++stats_.oom_retries;
      raw_->synchronize();
      release_free_segments();
      block = new_segment(pool, segment_size, stream);
      if (block == nullptr) throw OutOfMemoryError(oom_message(bytes));
    }
  }

  split(pool, block, size);
  block->allocated = true;
  block->requested = bytes;
  allocated_.emplace(block->ptr, block);
  stats_.allocated += block->size;
  stats_.requested += bytes;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return block->ptr;
}

void CachingAllocator::free(void* ptr) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = allocated_.find(ptr);
  if (found == allocated_.end()) {
    EFFNET_FAIL("CachingAllocator::free: pointer ", ptr, " was not allocated by the ", device_name_,
                " allocator (or was already freed)");
  }
  Block* block = found->second;
  allocated_.erase(found);
  block->allocated = false;
  stats_.allocated -= block->size;
  stats_.requested -= block->requested;

  // Merging keeps the lower block, so the first block of a segment stays its head.
  FreeList& pool = *block->pool;
  auto absorb_next = [&pool](Block* lower) {
    Block* upper = lower->next;
    pool.erase(upper);
    lower->size += upper->size;
    lower->next = upper->next;
    if (upper->next != nullptr) upper->next->prev = lower;
    delete upper;
  };
  if (block->next != nullptr && !block->next->allocated) absorb_next(block);
  if (block->prev != nullptr && !block->prev->allocated) {
    block = block->prev;
    pool.erase(block);  // its size, part of the ordering key, is about to change
    absorb_next(block);
  }
  pool.insert(block);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  raw_->synchronize();
  release_free_segments();
}

void CachingAllocator::set_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  limit_ = bytes;
}

size_t CachingAllocator::limit() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return limit_;
}

void CachingAllocator::inject_out_of_memory(int64_t after) {
  std::lock_guard<std::mutex> lock(mutex_);
  injected_failure_in_ = after;
}

size_t CachingAllocator::capacity() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (limit_ != 0) return limit_;
  const size_t available = raw_->available();
  return available == 0 ? 0 : stats_.reserved + available;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated = stats_.allocated;
  stats_.peak_reserved = stats_.reserved;
}

// Removes and returns the smallest free block of `stream` in `pool` that holds `size` bytes, or nullptr.
CachingAllocator::Block* CachingAllocator::find_free_block(FreeList& pool, size_t size, void* stream) {
  Block key;
  key.stream = stream;
  key.size = size;
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  Block* block = *it;
  pool.erase(it);
  return block;
}

// Returns a new segment as one free block (not in `pool`), or nullptr when the device or the limit
// refuses it.
CachingAllocator::Block* CachingAllocator::new_segment(FreeList& pool, size_t segment_size, void* stream) {
  if (limit_ != 0 && segment_size > limit_ - std::min(limit_, stats_.reserved)) return nullptr;
  auto block = std::make_unique<Block>();
  block->ptr = static_cast<char*>(raw_->allocate(segment_size));
  if (block->ptr == nullptr) return nullptr;
  block->size = segment_size;
  block->stream = stream;
  block->pool = &pool;
  segment_heads_.insert(block.get());
  ++stats_.segments_created;
  stats_.reserved += segment_size;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  return block.release();
}

// A fully free segment is a single free block: free neighbours are always merged.
void CachingAllocator::release_free_segments() {
  for (auto it = segment_heads_.begin(); it != segment_heads_.end();) {
    Block* head = *it;
    if (head->allocated || head->next != nullptr) {
      ++it;
      continue;
    }
    head->pool->erase(head);
    raw_->free(head->ptr);
    stats_.reserved -= head->size;
    delete head;
    it = segment_heads_.erase(it);
  }
}

// Cuts `block` (free, not in any pool) down to `size` and files the rest as a free block, unless the rest
// is too small to serve a request of its pool.
void CachingAllocator::split(FreeList& pool, Block* block, size_t size) {
  const size_t rest_size = block->size - size;
  const size_t min_rest = &pool == &small_free_ ? kRound : kSmallRequest;
  if (rest_size <= min_rest) return;
  auto* rest = new Block;
  rest->ptr = block->ptr + size;
  rest->size = rest_size;
  rest->stream = block->stream;
  rest->pool = &pool;
  rest->prev = block;
  rest->next = block->next;
  if (block->next != nullptr) block->next->prev = rest;
  block->next = rest;
  block->size = size;
  pool.insert(rest);
}

CachingAllocator::FreeList& CachingAllocator::pool_for(size_t size) {
  return size <= kSmallRequest ? small_free_ : large_free_;
}

std::string CachingAllocator::oom_message(size_t requested) const {
  std::ostringstream os;
  os << "out of memory on " << device_name_ << ": tried to allocate " << format_bytes(requested) << "; "
     << format_bytes(stats_.allocated) << " allocated, " << format_bytes(stats_.reserved)
     << " reserved, of which " << format_bytes(stats_.reserved - stats_.allocated) << " cached free";
  if (limit_ != 0) os << "; limit " << format_bytes(limit_);
  const std::string device = raw_->describe();
  if (!device.empty()) os << "; " << device;
  return os.str();
}

}  // namespace effnet
