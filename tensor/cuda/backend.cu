// The CUDA row of the dispatch table (tensor/backend.h): every field points at a kernel entry point of
// tensor/cuda/ (declared in kernels.h and allocator.h). No math here.
#include "tensor/backend.h"
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/kernels.h"

namespace effnet {

const Backend& cuda_backend() {
  static const Backend backend{
      .name = "cuda",
      .allocate = cuda::allocate,
      .allocate_pinned_host = cuda::allocate_pinned_host,
      .caching_allocator = cuda::caching_allocator,
      .fill = cuda::fill,
      .copy = cuda::copy,
      .copy_with_host = cuda::copy_with_host,
      .random = cuda::random,
      .unary = cuda::unary,
      .binary = cuda::binary,
      .addcmul = cuda::addcmul,
      .reduce = cuda::reduce,
      .argmax = cuda::argmax,
      .softmax = cuda::softmax,
      .softmax_backward = cuda::softmax_backward,
      .matmul = cuda::matmul,
      .conv2d = cuda::conv2d,
      .conv2d_backward_input = cuda::conv2d_backward_input,
      .conv2d_backward_weight = cuda::conv2d_backward_weight,
      .batch_norm_train = cuda::batch_norm_train,
      .batch_norm_backward = cuda::batch_norm_backward,
      .batch_norm_eval = cuda::own_batch_norm_eval,
      .channel_gate_backward = cuda::channel_gate_backward,
      .cross_entropy = cuda::cross_entropy,
      .cross_entropy_backward = cuda::cross_entropy_backward,
      .optimizer_step = cuda::optimizer_step,
      .global_norm = cuda::global_norm,
      .clip_by_norm = cuda::clip_by_norm,
      .synchronize = cuda::synchronize,
  };
  return backend;
}

}  // namespace effnet
