// The CPU row of the dispatch table.
#include "tensor/cpu/kernels.h"

#include <cstdlib>
#include <new>

namespace effnet {

namespace cpu {

std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
  // 64-byte alignment: a cache line, and enough for any SIMD load.
  const size_t rounded = (nbytes + 63) / 64 * 64;
  void* data = rounded == 0 ? nullptr : std::aligned_alloc(64, rounded);
  if (rounded != 0 && data == nullptr) {
    throw OutOfMemoryError(detail::concat("CPU out of memory: tried to allocate ", nbytes, " bytes"));
  }
  return std::make_shared<Storage>(data, nbytes, device, [](void* p) { std::free(p); });
}

void synchronize(Device) {}

}  // namespace cpu

const Backend& cpu_backend() {
  static const Backend table{
      .name = "cpu",
      .allocate = cpu::allocate,
      .allocate_pinned_host = nullptr,
      .fill = cpu::fill,
      .copy = cpu::copy,
      .copy_with_host = nullptr,
      .random = cpu::random,
      .unary = cpu::unary,
      .binary = cpu::binary,
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
