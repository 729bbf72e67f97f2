// Operands the CPU's convolution and batch-norm loops cannot take as they are: float16 / bfloat16 ones
// (the loops compute in float32 or float64) and channels-last ones (the loops index row-major NCHW). Such a
// call runs on adapted copies — float32 for 16-bit tensors (exact), row-major — and the result is written
// back into the caller's tensor, rounded once and in its layout. CUDA takes these operands directly
// (16-bit with float32 accumulation, NHWC descriptors), so this is the reference it is compared with.
#pragma once

#include "tensor/ops.h"

namespace effnet::cpu {

inline bool needs_adapting(const Tensor& t) { return is_16bit(t.dtype()) || !t.is_contiguous(); }

// A row-major copy in the computing dtype (float32 for 16-bit tensors); t itself when it already is one.
inline Tensor adapted(const Tensor& t) {
  if (!needs_adapting(t)) return t;
  return t.detach().to(is_16bit(t.dtype()) ? kFloat32 : t.dtype()).contiguous();
}

// A row-major buffer of out's shape in its computing dtype, for the adapted call to write.
inline Tensor adapted_like(const Tensor& out) {
  return empty(out.shape(), TensorOptions(is_16bit(out.dtype()) ? kFloat32 : out.dtype(), out.device()));
}

}  // namespace effnet::cpu
