// The CPU row of the dispatch table.
#include "tensor/cpu/kernels.h"

#include <cstdlib>
#include <memory>

#include "tensor/caching_allocator.h"

namespace effnet {

namespace cpu {

namespace {

// Page-aligned host memory for the caching allocator's segments; blocks inside them are 512-byte aligned.
class HostRawAllocator : public RawAllocator {
 public:
  void* allocate(size_t bytes) override { return std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096); }
  void free(void* ptr) override { std::free(ptr); }
  void synchronize() override {}  // CPU ops have finished when they return
};

}  // namespace

// Never destroyed: tensors may be freed during static destruction.
CachingAllocator& host_allocator(Device) {
  static auto* allocator = new CachingAllocator(std::make_unique<HostRawAllocator>(), "cpu");
  return *allocator;
}

// Cached like device memory: a training step frees and allocates the same activation sizes every step,
// and fresh pages from the kernel cost a page fault each (a tenth of a CPU training step's time).
std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
  CachingAllocator& allocator = host_allocator(Device::cpu());
  void* data = allocator.allocate(nbytes);
  return std::make_shared<Storage>(data, nbytes, device, [&allocator](void* p) { allocator.free(p); });
}

void synchronize(Device) {}

}  // namespace cpu

const Backend& cpu_backend() {
  static const Backend table{
      .name = "cpu",
      .allocate = cpu::allocate,
      .allocate_pinned_host = nullptr,
      .caching_allocator = cpu::host_allocator,
      .fill = cpu::fill,
      .copy = cpu::copy,
      .copy_with_host = nullptr,
      .random = cpu::random,
      .unary = cpu::unary,
      .binary = cpu::binary,
      .addcmul = cpu::addcmul,
      .reduce = cpu::reduce,
      .argmax = cpu::argmax,
      .softmax = cpu::softmax,
      .softmax_backward = cpu::softmax_backward,
      .matmul = cpu::matmul,
      .conv2d = cpu::conv2d,
      .conv2d_backward_input = cpu::conv2d_backward_input,
      .conv2d_backward_weight = cpu::conv2d_backward_weight,
      .batch_norm_train = cpu::batch_norm_train,
      .batch_norm_backward = cpu::batch_norm_backward,
      .batch_norm_eval = cpu::batch_norm_eval,
      .channel_gate_backward = cpu::channel_gate_backward,
      .cross_entropy = cpu::cross_entropy,
      .cross_entropy_backward = cpu::cross_entropy_backward,
      .optimizer_step = cpu::optimizer_step,
      .global_norm = cpu::global_norm,
      .clip_by_norm = cpu::clip_by_norm,
      .synchronize = cpu::synchronize,
  };
  return table;
}

}  // namespace effnet
