// CPU softmax and log-softmax along one dim of a contiguous tensor viewed as [outer, D, inner]:
//
//   softmax:     y_d = exp(x_d - m) / sum_j exp(x_j - m),   m = max_j x_j   (subtracting m avoids overflow)
//   log-softmax: y_d = x_d - m - log(sum_j exp(x_j - m))
//   backward:    dx_d = y_d (dy_d - sum_j dy_j y_j)          (softmax)
//                dx_d = dy_d - exp(y_d) sum_j dy_j           (log-softmax)
#include <cmath>

#include "tensor/cpu/kernels.h"
#include "tensor/cpu/loops.h"
#include "tensor/elementwise_math.h"

namespace effnet::cpu {

namespace {

struct Rows {
  int64_t outer = 1, d = 1, inner = 1;
};

Rows rows_of(const Tensor& t, int64_t dim) {
  Rows r;
  for (int64_t k = 0; k < t.dim(); ++k) {
    if (k < dim) r.outer *= t.size(k);
    else if (k == dim) r.d = t.size(k);
    else r.inner *= t.size(k);
  }
  return r;
}

}  // namespace

void softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  with_floating_type(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    const Rows r = rows_of(x, dim);
    const T* in = x.data<T>();
    T* o = out.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() > 2 * kChunk)
    for (int64_t row = 0; row < r.outer * r.inner; ++row) {
      const int64_t base = (row / r.inner) * r.d * r.inner + row % r.inner;
      T m = in[base];
      for (int64_t j = 1; j < r.d; ++j) m = std::max(m, in[base + j * r.inner]);
      T total = 0;
      for (int64_t j = 0; j < r.d; ++j) total += math::exp(in[base + j * r.inner] - m);
      if (log) {
        // (x - m) - log(total), not x - (m + log(total)): the latter rounds log(total) to the spacing of m.
        const T log_total = math::log(total);
        for (int64_t j = 0; j < r.d; ++j) o[base + j * r.inner] = (in[base + j * r.inner] - m) - log_total;
      } else {
        for (int64_t j = 0; j < r.d; ++j) o[base + j * r.inner] = math::exp(in[base + j * r.inner] - m) / total;
      }
    }
  });
}

void softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x) {
  with_floating_type(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    const Rows r = rows_of(y, dim);
    const T* yv = y.data<T>();
    const T* gy = grad_y.data<T>();
    T* gx = grad_x.data<T>();
#pragma omp parallel for schedule(static) if (y.numel() > 2 * kChunk)
    for (int64_t row = 0; row < r.outer * r.inner; ++row) {
      const int64_t base = (row / r.inner) * r.d * r.inner + row % r.inner;
      T dot = 0;
      for (int64_t j = 0; j < r.d; ++j) {
        const int64_t k = base + j * r.inner;
        dot += log ? gy[k] : gy[k] * yv[k];
      }
      for (int64_t j = 0; j < r.d; ++j) {
        const int64_t k = base + j * r.inner;
        gx[k] = log ? gy[k] - math::exp(yv[k]) * dot : yv[k] * (gy[k] - dot);
      }
    }
  });
}

}  // namespace effnet::cpu
