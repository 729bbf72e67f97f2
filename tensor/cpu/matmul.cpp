// CPU batched matrix product: out[i] = a[i] @ b[i],  a [B, M, K], b [B, K, N], out [B, M, N].
// Each operand is row-major (stride[2] == 1) or column-major (stride[1] == 1); a column-major operand is
// the transpose of a row-major one, which BLAS reads with its "transpose" flag, so no copy is made.
// GEMM itself is OpenBLAS's (multi-threaded); without OpenBLAS a plain loop does the same sum.
#include <algorithm>

#include "tensor/cpu/kernels.h"
#include "tensor/elementwise_math.h"

#if defined(EFFNET_HAVE_CBLAS)
#include <cblas.h>
#endif

namespace effnet::cpu {

namespace {

// How BLAS sees one operand: transposed or not, and its leading dimension.
struct Operand {
  bool transposed;
  int64_t ld;
};

Operand describe(const Tensor& t) {
  const bool row_major = t.strides()[2] == 1 && t.strides()[1] >= std::max<int64_t>(t.size(2), 1);
  if (row_major) return {false, std::max<int64_t>(t.strides()[1], 1)};
  return {true, std::max<int64_t>(t.strides()[2], 1)};
}

#if defined(EFFNET_HAVE_CBLAS)
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda,
              b, ldb, 0.0f, c, n);
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
          int64_t ldb, double* c) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b,
              ldb, 0.0, c, n);
}
#else
template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c) {
  // Row-major element (r, col) of an operand is p[r * ld + col], or p[col * ld + r] when transposed.
#pragma omp parallel for schedule(static) if (m * n * k > (1 << 18))
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * n;
    std::fill(row, row + n, T(0));
    for (int64_t p = 0; p < k; ++p) {
      const T av = ta ? a[p * lda + i] : a[i * lda + p];
      for (int64_t j = 0; j < n; ++j) row[j] += av * (tb ? b[j * ldb + p] : b[p * ldb + j]);
    }
  }
}
#endif

}  // namespace

void matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  with_floating_type(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    const int64_t batch = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
    T* c = out.data<T>();
    if (out.numel() == 0) return;
    if (k == 0) {
      std::fill(c, c + out.numel(), T(0));
      return;
    }
    const Operand oa = describe(a), ob = describe(b);
    for (int64_t i = 0; i < batch; ++i) {
      gemm(oa.transposed, ob.transposed, m, n, k, a.data<T>() + i * a.strides()[0], oa.ld,
           b.data<T>() + i * b.strides()[0], ob.ld, c + i * m * n);
    }
  });
}

}  // namespace effnet::cpu
