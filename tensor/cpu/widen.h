// The CPU's float16 / bfloat16 path for the kernels that compute in float32 only (convolution, batch norm):
// the 16-bit operands are widened to float32 (exact), the float32 kernel runs, and each output is rounded
// once. CUDA runs these on 16-bit operands directly, accumulating in float32, so this is the reference it
// is compared with (to rounding: the summation orders differ).
#pragma once

#include "tensor/ops.h"

namespace effnet::cpu {

inline bool is_16bit(const Tensor& t) { return t.dtype() == kFloat16 || t.dtype() == kBFloat16; }

// A float32 copy of a 16-bit tensor; any other tensor as it is.
inline Tensor widened(const Tensor& t) { return is_16bit(t) ? t.detach().to(kFloat32) : t; }

// A float32 buffer of out's shape for the float32 kernel to write.
inline Tensor float32_like(const Tensor& out) { return empty(out.shape(), TensorOptions(kFloat32, out.device())); }

}  // namespace effnet::cpu
