// 1x1 convolutions (stride 1, no padding, one group) whose channels are innermost in memory — channels-last
// operands, or images of one pixel (squeeze-excite's, where both layouts are the same bytes) — are one matrix
// product over the N H W pixels, run by cuBLAS. cuDNN's legacy API took about 17 ms of B4's 186 ms bf16
// channels-last step on an H200 for the 1x1 convolutions and 10 ms more for squeeze-excite's, which move a
// few hundred MB (docs/performance.md); cuBLAS's GEMMs run such shapes near memory speed.
//
//   forward          y[m, k] = sum_c x[m, c] w[k, c]             (y = x w^T)
//   backward input   grad_x[m, c] = sum_k grad_y[m, k] w[k, c]   (grad_x = grad_y w)
//   backward weight  grad_w[k, c] = sum_m grad_y[m, k] x[m, c]   (grad_w = grad_y^T x)
//
//   M = N H W pixels   C input channels   K output channels
//   x [M, C], y [M, K] and w [K, C] are row-major matrices in memory (w [K, C, 1, 1] is so in both layouts).
//
// cuBLAS is column-major: a row-major R x C matrix is the column-major C x R matrix, its transpose. So each
// product is computed transposed, with column-major operands:
//   forward          y^T (K x M) = op_T(w: C x K) x (C x M)
//   backward input   grad_x^T (C x M) = w (C x K) grad_y^T (K x M)
//   backward weight  grad_w^T (C x K) = x^T (C x M) op_T(grad_y^T: K x M)
// Sums are float32 (float64 for float64), on tensor cores for float16 / bfloat16, and in full float32
// unless allow_tf32() (tensor/math_mode.h), as for the other convolutions. cuBLAS's 64-bit interface
// takes a batch of any size in one call (cuDNN's chunks are not needed).

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/math_mode.h"

namespace effnet::cuda {
namespace {

cudaDataType_t data_type(DType dtype) {
  switch (dtype) {
    case DType::Float16: return CUDA_R_16F;
    case DType::BFloat16: return CUDA_R_16BF;
    case DType::Float64: return CUDA_R_64F;
    default: return CUDA_R_32F;
  }
}

// C (m x n, ld ldc) = op_a(A) op_b(B), column-major, in the operands' dtype with float32 (float64) sums.
void gemm(Context& ctx, DType dtype, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n, int64_t k,
          const void* a, int64_t lda, const void* b, int64_t ldb, void* c, int64_t ldc) {
  const cudaDataType_t type = data_type(dtype);
  const bool tf32 = dtype == kFloat32 && allow_tf32();
  const cublasComputeType_t compute = dtype == kFloat64 ? CUBLAS_COMPUTE_64F
                                      : tf32            ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                        : CUBLAS_COMPUTE_32F;
  // The handle's math mode is shared with matmul.cpp, which may have left TF32 on.
  EFFNET_CUBLAS_CHECK(cublasSetMathMode(ctx.cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  const double alpha64 = 1, beta64 = 0;
  const float alpha32 = 1, beta32 = 0;
  const void* alpha = dtype == kFloat64 ? static_cast<const void*>(&alpha64) : &alpha32;
  const void* beta = dtype == kFloat64 ? static_cast<const void*>(&beta64) : &beta32;
  EFFNET_CUBLAS_CHECK(cublasGemmEx_64(ctx.cublas, op_a, op_b, m, n, k, alpha, a, type, lda, b, type, ldb, beta, c,
                                      type, ldc, compute, CUBLAS_GEMM_DEFAULT));
}

struct Sizes {
  int64_t m, c, k;
};

Sizes sizes_of(const Tensor& x, const Tensor& w) { return {x.size(0) * x.size(2) * x.size(3), x.size(1), w.size(0)}; }

}  // namespace

bool pointwise_conv_supported(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g) {
  if (x.dim() != 4 || w.dim() != 4 || y.dim() != 4) return false;
  if (g.groups != 1 || w.size(2) != 1 || w.size(3) != 1 || g.stride_h != 1 || g.stride_w != 1 || g.pad_h != 0 ||
      g.pad_w != 0) {
    return false;
  }
  // Channels innermost: channels-last, or one pixel per image (both layouts alike).
  for (const Tensor* t : {&x, &w, &y}) {
    if (!t->is_contiguous(MemoryFormat::ChannelsLast)) return false;
  }
  const bool one_pixel = x.size(2) * x.size(3) == 1;
  return one_pixel || x.suggest_memory_format() == MemoryFormat::ChannelsLast;
}

void pointwise_conv2d(const Tensor& x, const Tensor& w, const Tensor& y) {
  const Sizes s = sizes_of(x, w);
  Context& ctx = context(y.device().index);
  gemm(ctx, x.dtype(), CUBLAS_OP_T, CUBLAS_OP_N, s.k, s.m, s.c, w.data_ptr(), s.c, x.data_ptr(), s.c, y.data_ptr(),
       s.k);
}

void pointwise_conv2d_backward_input(const Tensor& grad_y, const Tensor& w, const Tensor& grad_x) {
  const Sizes s = sizes_of(grad_x, w);
  Context& ctx = context(grad_x.device().index);
  gemm(ctx, grad_x.dtype(), CUBLAS_OP_N, CUBLAS_OP_N, s.c, s.m, s.k, w.data_ptr(), s.c, grad_y.data_ptr(), s.k,
       grad_x.data_ptr(), s.c);
}

void pointwise_conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Tensor& grad_w) {
  const Sizes s = sizes_of(x, grad_w);
  Context& ctx = context(grad_w.device().index);
  gemm(ctx, x.dtype(), CUBLAS_OP_N, CUBLAS_OP_T, s.c, s.k, s.m, x.data_ptr(), s.c, grad_y.data_ptr(), s.k,
       grad_w.data_ptr(), s.c);
}

}  // namespace effnet::cuda
