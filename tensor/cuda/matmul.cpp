// Batched matrix product out[b] = a[b] @ b[b] through cuBLAS (full fp32 or fp64 math; TF32 for float32 only
// when allow_tf32(), tensor/math_mode.h).
//
// cuBLAS is column-major: the bytes of a row-major R x C matrix are the column-major C x R matrix, its
// transpose. So out^T = b^T a^T is computed as one column-major GEMM with the operands swapped:
//   C (N x M, ld N) = op(b stored) (N x K) * op(a stored) (K x M)
// where an operand whose rows are contiguous is used as stored (op N) and a transposed view, whose columns
// are contiguous, is the column-major matrix itself and gets op T.
//
//   B   batch (an operand with batch stride 0 is shared by every batch entry)
//   M   rows of a and out;  K  columns of a = rows of b;  N  columns of b and out
//   ld  leading dimension: elements between consecutive columns of a column-major matrix
#include <algorithm>
#include <climits>
#include <type_traits>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/elementwise_math.h"
#include "tensor/math_mode.h"

namespace effnet::cuda {
namespace {

struct Operand {
  cublasOperation_t op = CUBLAS_OP_N;
  int64_t ld = 0;
  int64_t batch_stride = 0;
  Tensor tensor;  // the tensor read: the argument, or a contiguous copy of it
};

// How cuBLAS sees the row-major [rows, cols] matrices of a 3-D tensor. False when neither layout meets
// cuBLAS's rule that ld covers a whole column (e.g. rows broadcast with stride 0).
bool describe(const Tensor& t, Operand* operand) {
  const int64_t rows = t.size(1), cols = t.size(2);
  const int64_t row_stride = t.strides()[1], col_stride = t.strides()[2];
  operand->tensor = t;
  operand->batch_stride = t.size(0) == 1 ? 0 : t.strides()[0];
  // A stride of a size-1 dim is never used to step, so any legal value stands in for it.
  if (col_stride == 1 || cols == 1) {
    operand->op = CUBLAS_OP_N;
    operand->ld = rows == 1 ? std::max<int64_t>(cols, 1) : row_stride;
    if (operand->ld >= std::max<int64_t>(cols, 1)) return true;
  }
  if (row_stride == 1 || rows == 1) {
    operand->op = CUBLAS_OP_T;
    operand->ld = cols == 1 ? std::max<int64_t>(rows, 1) : col_stride;
    if (operand->ld >= std::max<int64_t>(rows, 1)) return true;
  }
  return false;
}

Operand prepare(const Tensor& t) {
  Operand operand;
  if (describe(t, &operand)) return operand;
  Tensor dense = make_tensor(allocate(static_cast<size_t>(t.numel()) * element_size(t.dtype()), t.device()),
                             t.shape(), contiguous_strides(t.shape()), 0, t.dtype());
  copy(dense, t);
  describe(dense, &operand);
  return operand;
}

// cublas{S,D}gemmStridedBatched by element type.
cublasStatus_t gemm_strided_batched(cublasHandle_t handle, cublasOperation_t op_a, cublasOperation_t op_b,
                                    int m, int n, int k, const float* alpha, const float* a, int lda,
                                    long long stride_a, const float* b, int ldb, long long stride_b,
                                    const float* beta, float* c, int ldc, long long stride_c, int batch) {
  return cublasSgemmStridedBatched(handle, op_a, op_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                                   beta, c, ldc, stride_c, batch);
}

cublasStatus_t gemm_strided_batched(cublasHandle_t handle, cublasOperation_t op_a, cublasOperation_t op_b,
                                    int m, int n, int k, const double* alpha, const double* a, int lda,
                                    long long stride_a, const double* b, int ldb, long long stride_b,
                                    const double* beta, double* c, int ldc, long long stride_c, int batch) {
  return cublasDgemmStridedBatched(handle, op_a, op_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                                   beta, c, ldc, stride_c, batch);
}

int as_int(int64_t value, const char* what) {
  EFFNET_CHECK(value >= 0 && value <= INT_MAX, "matmul: ", what, " = ", value, " exceeds cuBLAS's int range");
  return static_cast<int>(value);
}

}  // namespace

void matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  EFFNET_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3, "cuda matmul: expected 3-D operands, got ",
               a.str(), ", ", b.str(), ", ", out.str());
  EFFNET_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "cuda matmul: dtypes differ: ", a.str(),
               ", ", b.str(), ", ", out.str());
  const int64_t batch = out.size(0), m = out.size(1), k = a.size(2), n = out.size(2);
  EFFNET_CHECK(a.size(1) == m && b.size(1) == k && b.size(2) == n && (a.size(0) == batch || a.size(0) == 1) &&
                   (b.size(0) == batch || b.size(0) == 1),
               "cuda matmul: shapes do not match: ", a.str(), " @ ", b.str(), " -> ", out.str());
  if (out.numel() == 0) return;
  EFFNET_CHECK(out.is_contiguous(), "cuda matmul: out must be contiguous, got ", out.str());

  const int device = out.device().index;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  if (k == 0) {
    const size_t bytes = static_cast<size_t>(out.numel()) * element_size(out.dtype());
    EFFNET_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, bytes, ctx.stream));
    return;
  }

  const Operand lhs = prepare(b), rhs = prepare(a);
  const int in = as_int(n, "N"), im = as_int(m, "M"), ik = as_int(k, "K"), ibatch = as_int(batch, "B");
  const int ld_lhs = as_int(lhs.ld, "ld(b)"), ld_rhs = as_int(rhs.ld, "ld(a)");
  const long long out_stride = m * n;
  with_floating_type(out.dtype(), "cuda matmul", [&](auto zero) {
    using T = decltype(zero);
    const T alpha = 1, beta = 0;
    const auto* pb = static_cast<const T*>(lhs.tensor.data_ptr());
    const auto* pa = static_cast<const T*>(rhs.tensor.data_ptr());
    auto* pc = static_cast<T*>(out.data_ptr());
    const bool tf32 = std::is_same_v<T, float> && allow_tf32();
    EFFNET_CUBLAS_CHECK(cublasSetMathMode(ctx.cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    EFFNET_CUBLAS_CHECK(gemm_strided_batched(ctx.cublas, lhs.op, rhs.op, in, im, ik, &alpha, pb, ld_lhs,
                                             lhs.batch_stride, pa, ld_rhs, rhs.batch_stride, &beta, pc, in,
                                             out_stride, ibatch));
  });
}

}  // namespace effnet::cuda
