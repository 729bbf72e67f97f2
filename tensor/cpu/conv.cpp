// CPU 2-D convolution, NCHW, float32 and float64 (contracts in tensor/backend.h).
//
//   N batch, C input channels, H x W input, K output channels (filters), R x S filter, P x Q output,
//   G groups: filter k sees the C / G input channels of its group (c below runs over them only);
//   sh, sw stride, ph, pw padding, dh, dw dilation; gx, gw, gy the gradients of x, w, y.
//
//   forward:         y[n, k, p, q]  = sum_{c, r, s} w[k, c, r, s] x[n, c, p sh - ph + r dh, q sw - pw + s dw]
//   input gradient:  gx[n, c, h, w] = sum of w[k, c, r, s] gy[n, k, p, q] over every (k, r, s, p, q) whose
//                                     forward term read x[n, c, h, w]
//   weight gradient: gw[k, c, r, s] = sum_{n,p,q} gy[n, k, p, q] x[n, c, p sh - ph + r dh, q sw - pw + s dw]
// Positions outside the image read as 0 (the padding).
//
// General path, per sample and group: im2col unrolls the receptive fields into the column matrix
//   col[(c, r, s), (p, q)] = x[n, c, p sh - ph + r dh, q sw - pw + s dw]          [C/G R S, P Q]
// so that every kernel is one GEMM:
//   y[n, group]  = w[group] @ col                                  [K/G, C/G R S] @ [C/G R S, P Q]
//   col          = w[group]^T @ gy[n, group],  gx[n, group] = col2im(col)  (overlapping fields add up)
//   gw[group]   += gy[n, group] @ col^T                            summed over the batch
// A 1x1 filter with stride 1 and no padding needs no unrolling: x[n, group] viewed as [C/G, H W] already is
// col (and the input gradient's GEMM writes gx directly).
// Depthwise convolution (G = C = K: one input channel per filter) would make GEMMs of a single row, all
// overhead; direct loops over each (n, c) plane do it instead.
//
// Threads: the GEMMs run one after another, each spread by OpenBLAS over its own pthread pool, and the
// unrolling stays on the calling thread. Measured on 2 cores (N = 8): OpenMP over the samples on top of
// OpenBLAS's threads was 1.5-5x slower (oversubscription); it would be 1.2-1.8x faster with single-threaded
// GEMMs, but the pthread build of OpenBLAS sets its thread count only globally (matmul and N = 1 would go
// serial too). An OpenMP im2col between the GEMMs was up to 20x slower: its threads and OpenBLAS's, which
// spin a while after each call, took turns by the scheduler tick. Without OpenBLAS the one thread pool is
// OpenMP's, so the fallback GEMM and the unrolling both use it. The depthwise loops (no GEMM) use OpenMP.
#include <algorithm>
#include <memory>
#include <numeric>
#include <vector>

#include "tensor/cpu/adapt.h"
#include "tensor/cpu/isa.h"
#include "tensor/cpu/kernels.h"
#include "tensor/cpu/loops.h"
#include "tensor/elementwise_math.h"

#if defined(EFFNET_HAVE_CBLAS)
#include <cblas.h>
#endif

namespace effnet::cpu {

namespace {

// The sizes of one call (legend above); cg and kg are the input and output channels of one group.
struct Dims {
  int64_t n, c, h, w, k, r, s, p, q;
  int64_t groups, cg, kg;
  int64_t sh, sw, ph, pw, dh, dw;

  int64_t crs() const { return cg * r * s; }  // rows of col
  int64_t pq() const { return p * q; }
  // col is x itself: every output pixel reads exactly its own input pixel.
  bool pointwise() const { return r == 1 && s == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  bool depthwise() const { return cg == 1 && kg == 1; }
};

// Every kernel has an x-shaped, a w-shaped and a y-shaped tensor (input or gradient).
Dims dims_of(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g) {
  return {x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), y.size(2), y.size(3),
          g.groups, x.size(1) / g.groups, w.size(0) / g.groups,
          g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w};
}

// The outputs o in [lo, hi) of `count` whose input index o stride + offset lies inside [0, size).
struct Span {
  int64_t lo, hi;
};

Span valid_span(int64_t offset, int64_t stride, int64_t size, int64_t count) {
  const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t hi = offset > size - 1 ? 0 : std::min(count, (size - 1 - offset) / stride + 1);
  return {std::min(lo, hi), hi};
}

// y[i incy] += a x[i incx]; the unit-stride case has its own loop so that the compiler vectorizes it.
template <class T>
EFFNET_LOOP_INLINE void axpy(int64_t n, T a, const T* x, int64_t incx, T* y, int64_t incy) {
  if (incx == 1 && incy == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i * incy] += a * x[i * incx];
  }
}

// out[i] += x[i incx] y[i]
template <class T>
EFFNET_LOOP_INLINE void multiply_add(int64_t n, const T* x, int64_t incx, const T* y, T* out) {
  if (incx == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] += x[i] * y[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] += x[i * incx] * y[i];
  }
}

// ---- GEMM: c = op(a) @ op(b) + beta c, row-major, op(a) [m, k], op(b) [k, n], c [m, n], every operand
// packed (leading dimension = its row length as stored). beta is 0 or 1; with 0, c is not read.
#if defined(EFFNET_HAVE_CBLAS)
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float beta,
          float* c) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
              ta ? m : k, b, tb ? k : n, beta, c, n);
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, const double* b, double beta,
          double* c) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a,
              ta ? m : k, b, tb ? k : n, beta, c, n);
}
#else
template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, const T* b, T beta, T* c) {
  // A transposed b is first copied upright, so that the inner loop always runs along rows of b and c.
  std::vector<T> upright;
  if (tb) {
    upright.resize(k * n);
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t l = 0; l < k; ++l) upright[l * n + j] = b[j * k + l];
    }
    b = upright.data();
  }
#pragma omp parallel for schedule(static) if (m * n * k > (1 << 18))
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * n;
    if (beta == T(0)) std::fill(row, row + n, T(0));
    for (int64_t l = 0; l < k; ++l) axpy(n, ta ? a[l * m + i] : a[i * k + l], b + l * n, 1, row, 1);
  }
}
#endif

// ---- im2col and col2im for one sample and group: x [C/G, H, W] <-> col [C/G R S, P Q]; parallel only
// without OpenBLAS (see the top of the file).
#if defined(EFFNET_HAVE_CBLAS)
constexpr bool kParallelUnroll = false;
#else
constexpr bool kParallelUnroll = true;
#endif

template <class T>
void im2col(const Dims& d, const T* x, T* col) {
  const int64_t rows = d.crs();
#pragma omp parallel for schedule(static) if (kParallelUnroll && rows * d.pq() > 2 * kChunk)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t c = row / (d.r * d.s), r = row / d.s % d.r, s = row % d.s;
    const int64_t h0 = r * d.dh - d.ph, w0 = s * d.dw - d.pw;
    const Span ps = valid_span(h0, d.sh, d.h, d.p), qs = valid_span(w0, d.sw, d.w, d.q);
    T* out = col + row * d.pq();
    std::fill(out, out + ps.lo * d.q, T(0));
    for (int64_t p = ps.lo; p < ps.hi; ++p) {
      const T* in = x + (c * d.h + p * d.sh + h0) * d.w + qs.lo * d.sw + w0;
      T* o = out + p * d.q;
      std::fill(o, o + qs.lo, T(0));
      if (d.sw == 1) {
        std::copy(in, in + (qs.hi - qs.lo), o + qs.lo);
      } else {
        for (int64_t q = 0; q < qs.hi - qs.lo; ++q) o[qs.lo + q] = in[q * d.sw];
      }
      std::fill(o + qs.hi, o + d.q, T(0));
    }
    std::fill(out + ps.hi * d.q, out + d.pq(), T(0));
  }
}

// Overwrites x with the sum of each pixel's entries in col. One thread per channel: the (r, s) rows of a
// channel all add into its plane.
template <class T>
void col2im(const Dims& d, const T* col, T* x) {
#pragma omp parallel for schedule(static) if (kParallelUnroll && d.crs() * d.pq() > 2 * kChunk)
  for (int64_t c = 0; c < d.cg; ++c) {
    T* plane = x + c * d.h * d.w;
    std::fill(plane, plane + d.h * d.w, T(0));
    for (int64_t r = 0; r < d.r; ++r) {
      for (int64_t s = 0; s < d.s; ++s) {
        const int64_t h0 = r * d.dh - d.ph, w0 = s * d.dw - d.pw;
        const Span ps = valid_span(h0, d.sh, d.h, d.p), qs = valid_span(w0, d.sw, d.w, d.q);
        const T* in = col + ((c * d.r + r) * d.s + s) * d.pq();
        for (int64_t p = ps.lo; p < ps.hi; ++p) {
          T* out = plane + (p * d.sh + h0) * d.w + qs.lo * d.sw + w0;
          axpy(qs.hi - qs.lo, T(1), in + p * d.q + qs.lo, 1, out, d.sw);
        }
      }
    }
  }
}

// ---- general path

template <class T>
void forward_gemm(const Dims& d, const T* x, const T* w, T* y) {
  const int64_t crs = d.crs(), pq = d.pq();
  const auto col = std::make_unique_for_overwrite<T[]>(d.pointwise() ? 0 : crs * pq);
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t g = 0; g < d.groups; ++g) {
      const T* xg = x + (n * d.c + g * d.cg) * d.h * d.w;
      if (!d.pointwise()) im2col(d, xg, col.get());
      gemm(false, false, d.kg, pq, crs, w + g * d.kg * crs, d.pointwise() ? xg : col.get(), T(0),
           y + (n * d.k + g * d.kg) * pq);
    }
  }
}

template <class T>
void backward_input_gemm(const Dims& d, const T* gy, const T* w, T* gx) {
  const int64_t crs = d.crs(), pq = d.pq();
  const auto col = std::make_unique_for_overwrite<T[]>(d.pointwise() ? 0 : crs * pq);
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t g = 0; g < d.groups; ++g) {
      T* gxg = gx + (n * d.c + g * d.cg) * d.h * d.w;
      gemm(true, false, crs, pq, d.kg, w + g * d.kg * crs, gy + (n * d.k + g * d.kg) * pq, T(0),
           d.pointwise() ? gxg : col.get());
      if (!d.pointwise()) col2im(d, col.get(), gxg);
    }
  }
}

// The batch sum is GEMM's own accumulation (beta = 1 after the first sample): no partial sums to reduce.
template <class T>
void backward_weight_gemm(const Dims& d, const T* gy, const T* x, T* gw) {
  const int64_t crs = d.crs(), pq = d.pq();
  const auto col = std::make_unique_for_overwrite<T[]>(d.pointwise() ? 0 : crs * pq);
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t g = 0; g < d.groups; ++g) {
      const T* xg = x + (n * d.c + g * d.cg) * d.h * d.w;
      if (!d.pointwise()) im2col(d, xg, col.get());
      gemm(false, true, d.kg, crs, pq, gy + (n * d.k + g * d.kg) * pq, d.pointwise() ? xg : col.get(),
           n == 0 ? T(0) : T(1), gw + g * d.kg * crs);
    }
  }
}

// ---- depthwise path: plane (n, c) of y is x's plane (n, c) correlated with filter c. Each (r, s) tap is
// a row operation over the valid output columns, unit-stride in the common stride-1 case.

// The depthwise loops work a plane (or a channel) at a time through run_for_isa, so that they run in AVX2
// where the CPU has it (tensor/cpu/isa.h: each value is computed on its own, so the same results).
//
// They share one walk: for each tap (r, s) and each output row p whose input row lies inside the plane,
// row(tap, p, x_offset, q_lo, count) over the `count` valid output columns from q_lo, where x_offset is the
// input element that tap reads for output (p, q_lo) (the next columns are stride_w further on).
template <class Row>
EFFNET_LOOP_INLINE void for_each_tap_row(const Dims* d, Row row) {
  for (int64_t r = 0; r < d->r; ++r) {
    const int64_t h0 = r * d->dh - d->ph;
    const Span ps = valid_span(h0, d->sh, d->h, d->p);
    for (int64_t s = 0; s < d->s; ++s) {
      const int64_t w0 = s * d->dw - d->pw;
      const Span qs = valid_span(w0, d->sw, d->w, d->q);
      for (int64_t p = ps.lo; p < ps.hi; ++p) {
        row(r * d->s + s, p, (p * d->sh + h0) * d->w + qs.lo * d->sw + w0, qs.lo, qs.hi - qs.lo);
      }
    }
  }
}

struct ForwardDepthwisePlane {
  template <class T>
  EFFNET_LOOP_INLINE static void run(const Dims* d, const T* in, const T* filter, T* out) {
    std::fill(out, out + d->pq(), T(0));
    for_each_tap_row(d, [&](int64_t tap, int64_t p, int64_t x_offset, int64_t q_lo, int64_t count)
                            EFFNET_LAMBDA_INLINE {
                              axpy(count, filter[tap], in + x_offset, d->sw, out + p * d->q + q_lo, 1);
                            });
  }
};

template <class T>
void forward_depthwise(const Dims& d, const T* x, const T* w, T* y) {
#pragma omp parallel for schedule(static) if (d.n * d.c * d.pq() * d.r * d.s > 2 * kChunk)
  for (int64_t plane = 0; plane < d.n * d.c; ++plane) {
    run_for_isa<ForwardDepthwisePlane>(&d, x + plane * d.h * d.w, w + plane % d.c * d.r * d.s, y + plane * d.pq());
  }
}

// The forward's row operations with source and destination swapped: each tap scatters gy back.
struct BackwardInputDepthwisePlane {
  template <class T>
  EFFNET_LOOP_INLINE static void run(const Dims* d, const T* in, const T* filter, T* out) {
    std::fill(out, out + d->h * d->w, T(0));
    for_each_tap_row(d, [&](int64_t tap, int64_t p, int64_t x_offset, int64_t q_lo, int64_t count)
                            EFFNET_LAMBDA_INLINE {
                              axpy(count, filter[tap], in + p * d->q + q_lo, 1, out + x_offset, d->sw);
                            });
  }
};

template <class T>
void backward_input_depthwise(const Dims& d, const T* gy, const T* w, T* gx) {
#pragma omp parallel for schedule(static) if (d.n * d.c * d.pq() * d.r * d.s > 2 * kChunk)
  for (int64_t plane = 0; plane < d.n * d.c; ++plane) {
    run_for_isa<BackwardInputDepthwisePlane>(&d, gy + plane * d.pq(), w + plane % d.c * d.r * d.s,
                                             gx + plane * d.h * d.w);
  }
}

// Channel c's taps: partial[tap, q] = sum over the batch and the output rows of x gy, a row of partial sums
// per tap, one per output column q (summed up by the caller): the inner loop is then a vectorizable
// multiply-add, where a dot product's single running sum would not vectorize.
struct WeightPartialsDepthwise {
  template <class T>
  EFFNET_LOOP_INLINE static void run(const Dims* d, int64_t c, const T* gy, const T* x, T* partial) {
    std::fill(partial, partial + d->r * d->s * d->q, T(0));
    for (int64_t n = 0; n < d->n; ++n) {
      const T* in = x + (n * d->c + c) * d->h * d->w;
      const T* grad = gy + (n * d->c + c) * d->pq();
      for_each_tap_row(d, [&](int64_t tap, int64_t p, int64_t x_offset, int64_t q_lo, int64_t count)
                              EFFNET_LAMBDA_INLINE {
                                multiply_add(count, in + x_offset, d->sw, grad + p * d->q + q_lo,
                                             partial + tap * d->q + q_lo);
                              });
    }
  }
};

// One thread per channel sums its filter's taps over the whole batch, so no two threads share a weight.
template <class T>
void backward_weight_depthwise(const Dims& d, const T* gy, const T* x, T* gw) {
  const int64_t taps = d.r * d.s;
#pragma omp parallel if (d.n * d.c * d.pq() * taps > 2 * kChunk)
  {
    std::vector<T> partial(taps * d.q);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < d.c; ++c) {
      run_for_isa<WeightPartialsDepthwise>(&d, c, gy, x, partial.data());
      for (int64_t tap = 0; tap < taps; ++tap) {
        const T* row = partial.data() + tap * d.q;
        gw[c * taps + tap] = std::accumulate(row, row + d.q, T(0));
      }
    }
  }
}

}  // namespace

void conv2d(const Tensor& x, const Tensor& w, const Conv2dGeometry& g, const Tensor& y) {
  if (needs_adapting(x) || needs_adapting(w) || needs_adapting(y)) {  // 16-bit or channels-last
    const Tensor result = adapted_like(y);
    conv2d(adapted(x), adapted(w), g, result);
    copy(y, result);
    return;
  }
  with_floating_type(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    if (y.numel() == 0) return;
    if (x.numel() == 0 || w.numel() == 0) {  // an empty sum per output
      std::fill(y.data<T>(), y.data<T>() + y.numel(), T(0));
      return;
    }
    const Dims d = dims_of(x, w, y, g);
    if (d.depthwise()) forward_depthwise(d, x.data<T>(), w.data<T>(), y.data<T>());
    else forward_gemm(d, x.data<T>(), w.data<T>(), y.data<T>());
  });
}

void conv2d_backward_input(const Tensor& grad_y, const Tensor& w, const Conv2dGeometry& g, const Tensor& grad_x) {
  if (needs_adapting(grad_y) || needs_adapting(w) || needs_adapting(grad_x)) {
    const Tensor result = adapted_like(grad_x);
    conv2d_backward_input(adapted(grad_y), adapted(w), g, result);
    copy(grad_x, result);
    return;
  }
  with_floating_type(grad_y.dtype(), "conv2d_backward_input", [&](auto tag) {
    using T = decltype(tag);
    if (grad_x.numel() == 0) return;
    if (grad_y.numel() == 0 || w.numel() == 0) {
      std::fill(grad_x.data<T>(), grad_x.data<T>() + grad_x.numel(), T(0));
      return;
    }
    const Dims d = dims_of(grad_x, w, grad_y, g);
    if (d.depthwise()) backward_input_depthwise(d, grad_y.data<T>(), w.data<T>(), grad_x.data<T>());
    else backward_input_gemm(d, grad_y.data<T>(), w.data<T>(), grad_x.data<T>());
  });
}

void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dGeometry& g, const Tensor& grad_w) {
  if (needs_adapting(grad_y) || needs_adapting(x) || needs_adapting(grad_w)) {
    const Tensor result = adapted_like(grad_w);
    conv2d_backward_weight(adapted(grad_y), adapted(x), g, result);
    copy(grad_w, result);
    return;
  }
  with_floating_type(grad_y.dtype(), "conv2d_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    if (grad_w.numel() == 0) return;
    if (grad_y.numel() == 0 || x.numel() == 0) {
      std::fill(grad_w.data<T>(), grad_w.data<T>() + grad_w.numel(), T(0));
      return;
    }
    const Dims d = dims_of(x, grad_w, grad_y, g);
    if (d.depthwise()) backward_weight_depthwise(d, grad_y.data<T>(), x.data<T>(), grad_w.data<T>());
    else backward_weight_gemm(d, grad_y.data<T>(), x.data<T>(), grad_w.data<T>());
  });
}

}  // namespace effnet::cpu
