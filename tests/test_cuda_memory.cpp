// The caching allocator on a real GPU: reuse, splitting, out-of-memory retry and its error message.
// (The allocator's logic is tested on every machine in test_allocator.cpp with a fake device.)
#include <gtest/gtest.h>

#include "tensor/ops.h"
#include "tests/test_util.h"

#include "tensor/memory.h"

#if defined(EFFNET_WITH_CUDA)
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#endif

namespace effnet {
namespace {

#if defined(EFFNET_WITH_CUDA)

// Leaves the device's allocator without limit and with an empty cache after each test.
class CudaMemory : public testing::Test {
 protected:
  void SetUp() override {
    EFFNET_REQUIRE_CUDA_OR_SKIP();
    // The first use of the device creates its context, whose cuBLAS workspace is a segment of its own:
    // do it before any test counts segments.
    (void)empty({1}, TensorOptions(kFloat32, Device::cuda()));
    cuda::set_memory_limit(0, 0);
    cuda::empty_cache(0);
  }
  void TearDown() override {
    if (!cuda_available()) return;
    cuda::set_memory_limit(0, 0);
    cuda::empty_cache(0);
  }
};

TEST_F(CudaMemory, FreedTensorMemoryIsReusedWithoutNewSegments) {
  void* first;
  {
    Tensor t = empty({1 << 20}, TensorOptions(kFloat32, Device::cuda()));
    first = t.data_ptr();
  }
  const AllocatorStats before = cuda::memory_stats(0);
  Tensor again = empty({1 << 20}, TensorOptions(kFloat32, Device::cuda()));
  const AllocatorStats after = cuda::memory_stats(0);
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(after.segments_created, before.segments_created);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
}

TEST_F(CudaMemory, SmallTensorsShareOneSegment) {
  const AllocatorStats before = cuda::memory_stats(0);
  Tensor a = empty({1000}, TensorOptions(kFloat32, Device::cuda()));
  Tensor b = empty({1000}, TensorOptions(kFloat32, Device::cuda()));
  const AllocatorStats after = cuda::memory_stats(0);
  EXPECT_EQ(after.segments_created, before.segments_created + 1);
  const auto distance = static_cast<char*>(b.data_ptr()) - static_cast<char*>(a.data_ptr());
  EXPECT_EQ(std::abs(distance), 4096) << "1000 floats round up to 4096 bytes, cut from the same segment";
}

TEST_F(CudaMemory, ReleasesTheCacheAndRetriesWhenTheLimitIsHit) {
  cuda::set_memory_limit(0, size_t{256} << 20);
  { Tensor big = empty({int64_t{160} << 20 >> 2}, TensorOptions(kFloat32, Device::cuda())); }
  EXPECT_GE(cuda::memory_stats(0).reserved, size_t{160} << 20) << "freed memory stays cached";
  const uint64_t retries = cuda::memory_stats(0).oom_retries;
  Tensor other = empty({int64_t{200} << 20 >> 2}, TensorOptions(kFloat32, Device::cuda()));
  EXPECT_EQ(cuda::memory_stats(0).oom_retries, retries + 1);
  other.fill_(1.0f);
  EXPECT_EQ(sum(other.slice(0, 0, 10)).item(), 10.0);
}

TEST_F(CudaMemory, OutOfMemoryNamesWhatWasAskedAndWhatIsHeld) {
  Tensor held = empty({1 << 20}, TensorOptions(kFloat32, Device::cuda()));
  const int64_t absurd = int64_t{1} << 50;  // 4 PiB of float32
  try {
    empty({absurd}, TensorOptions(kFloat32, Device::cuda()));
    FAIL() << "allocating 4 PiB must fail";
  } catch (const OutOfMemoryError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cuda:0"), std::string::npos) << m;
    EXPECT_NE(m.find(std::to_string(absurd * 4)), std::string::npos) << m;
    EXPECT_NE(m.find("allocated"), std::string::npos) << m;
    EXPECT_NE(m.find("reserved"), std::string::npos) << m;
  }
  held.fill_(2.0f);  // the allocator still works after the failure
  EXPECT_EQ(held.slice(0, 0, 1).item(), 2.0);
}

TEST_F(CudaMemory, PeakTracksTheHighWaterMark) {
  cuda::reset_peak_memory_stats(0);
  const size_t base = cuda::memory_stats(0).allocated;
  { Tensor t = empty({8 << 20}, TensorOptions(kFloat32, Device::cuda())); }
  const AllocatorStats s = cuda::memory_stats(0);
  EXPECT_EQ(s.allocated, base);
  EXPECT_GE(s.peak_allocated, base + (size_t{32} << 20));
}

TEST_F(CudaMemory, CapacityIsTheLimitOrWhatIsHeldPlusTheFreeMemory) {
  const Device gpu = Device::cuda();
  size_t free_bytes = 0, total_bytes = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total_bytes), cudaSuccess);
  const size_t capacity = memory_capacity(gpu);
  EXPECT_GE(capacity, memory_stats(gpu).reserved);
  EXPECT_LE(capacity, total_bytes);
  EXPECT_GT(capacity, total_bytes / 2) << "a test process holds little of the card";
  set_memory_limit(gpu, size_t{300} << 20);
  EXPECT_EQ(memory_capacity(gpu), size_t{300} << 20);
  EXPECT_EQ(memory_stats(gpu).reserved, cuda::memory_stats(0).reserved);
}

// No GPU needed: the libraries' own out-of-memory statuses become OutOfMemoryError (what effnet_bench
// --max-batch recovers from), every other failure stays a plain Error.
TEST(CudaErrors, LibrariesOutOfMemoryIsOutOfMemoryError) {
  using namespace cuda::detail;
  EXPECT_THROW(throw_cuda_error(cudaErrorMemoryAllocation, "call", __FILE__, __LINE__), OutOfMemoryError);
  EXPECT_THROW(throw_cublas_error(CUBLAS_STATUS_ALLOC_FAILED, "call", __FILE__, __LINE__), OutOfMemoryError);
  EXPECT_THROW(throw_cudnn_error(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED, "call", __FILE__, __LINE__),
               OutOfMemoryError);
  EXPECT_THROW(throw_cudnn_error(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, "call", __FILE__, __LINE__),
               OutOfMemoryError);
  auto is_plain_error = [](auto&& thrower) {
    try {
      thrower();
    } catch (const OutOfMemoryError&) {
      return false;
    } catch (const Error& e) {
      return std::string(e.what()).find("test_cuda_memory.cpp") != std::string::npos;
    }
    return false;
  };
  EXPECT_TRUE(is_plain_error([] { throw_cuda_error(cudaErrorInvalidValue, "call", __FILE__, __LINE__); }));
  EXPECT_TRUE(is_plain_error([] { throw_cublas_error(CUBLAS_STATUS_INVALID_VALUE, "call", __FILE__, __LINE__); }));
  EXPECT_TRUE(is_plain_error([] { throw_cudnn_error(CUDNN_STATUS_BAD_PARAM, "call", __FILE__, __LINE__); }));
}

#endif  // EFFNET_WITH_CUDA: a CPU-only build has no device allocator to test

}  // namespace
}  // namespace effnet
