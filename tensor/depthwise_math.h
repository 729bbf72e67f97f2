// The sums of a depthwise convolution, one output element (or one input or weight gradient term) at a time:
// effnet's CUDA depthwise kernels (tensor/cuda/depthwise_conv.cu) call these, and so does a CPU test
// (tests/test_conv_kernels.cpp) that checks their index arithmetic against conv2d on every element.
//
// A depthwise convolution has groups = C = K: channel c is convolved with its own R x S filter w[c, 0, :, :].
//   forward          y[n, c, p, q] = sum_{r, s} w[c, r, s] x[n, c, ih(p, r), iw(q, s)]
//   backward input   grad_x[n, c, i, j] = sum over the (r, s) with ih(p, r) = i and iw(q, s) = j for some
//                    output pixel (p, q) of w[c, r, s] grad_y[n, c, p, q]
//   backward weight  grad_w[c, r, s] = sum_{n, p, q} grad_y[n, c, p, q] x[n, c, ih(p, r), iw(q, s)]
//   ih(p, r) = p stride_h - pad_h + r dilation_h (taps outside [0, H) read zero); iw likewise
//
//   N batch   C channels   H, W input height, width   P, Q output height, width   R, S filter height, width
//   (template arguments, so that the taps unroll and a weight gradient's R S sums stay in registers)
//
// Operands are dense, either row-major (NCHW) or channels-last (NHWC); w [C, 1, R, S] is laid out alike in
// both. Sums are taken in A (float32 for 16-bit and float32 operands, float64 for float64).
#pragma once

#include <cstdint>

#include "tensor/host_device.h"

namespace effnet {

struct DepthwiseGeometry {
  int64_t n = 0;
  int64_t c = 0, h = 0, w = 0, p = 0, q = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  bool channels_last = false;

  // Where the values of plane (image, ch) of a [N, C, rows, cols] operand lie: value (row, col) at
  // base + row row_stride + col col_stride, the last two terms within one image (below 2^31: the callers
  // check).
  struct Plane {
    int64_t base;
    int row_stride, col_stride;
    EFFNET_HOST_DEVICE int64_t at(int row, int col) const { return base + (row * row_stride + col * col_stride); }
  };
  EFFNET_HOST_DEVICE Plane plane(int64_t image, int64_t ch, int64_t rows, int64_t cols) const {
    if (channels_last) return {image * rows * cols * c + ch, static_cast<int>(cols * c), static_cast<int>(c)};
    return {(image * c + ch) * rows * cols, static_cast<int>(cols), 1};
  }
  EFFNET_HOST_DEVICE Plane input_plane(int64_t image, int64_t ch) const { return plane(image, ch, h, w); }
  EFFNET_HOST_DEVICE Plane output_plane(int64_t image, int64_t ch) const { return plane(image, ch, p, q); }
};

// Filter tap t = r S + s of channel ch lies at w[ch ch_stride + t tap_stride]: as stored, [C, R S]
// (ch_stride R S, tap_stride 1), or taps-major, [R S, C] (ch_stride 1, tap_stride C), where the threads of a
// warp that take neighbouring channels (channels-last) read neighbouring filter values.
template <class T>
struct DepthwiseFilter {
  const T* w;
  int64_t ch_stride, tap_stride;
  EFFNET_HOST_DEVICE T at(int64_t ch, int tap) const { return w[ch * ch_stride + tap * tap_stride]; }
};

// Row and column arithmetic is in int: one image's sides are far below 2^31.

// Calls f(tap, i, j) for each tap r S + s of output pixel (row, col) that reads an input value (i, j) inside
// the image.
template <int R, int S, class F>
EFFNET_HOST_DEVICE void for_each_input_tap(const DepthwiseGeometry& g, int row, int col, F&& f) {
  const int h = static_cast<int>(g.h), width = static_cast<int>(g.w);
  const int top = row * static_cast<int>(g.stride_h) - static_cast<int>(g.pad_h);
  const int left = col * static_cast<int>(g.stride_w) - static_cast<int>(g.pad_w);
EFFNET_UNROLL
  for (int r = 0; r < R; ++r) {
    const int i = top + r * static_cast<int>(g.dilation_h);
    if (i < 0 || i >= h) continue;
EFFNET_UNROLL
    for (int s = 0; s < S; ++s) {
      const int j = left + s * static_cast<int>(g.dilation_w);
      if (j < 0 || j >= width) continue;
      f(r * S + s, i, j);
    }
  }
}

// y[n, ch, row, col].
template <int R, int S, class A, class T>
EFFNET_HOST_DEVICE A depthwise_output(const DepthwiseGeometry& g, const T* x, const DepthwiseFilter<T>& filter,
                                      int64_t image, int64_t ch, int row, int col) {
  const DepthwiseGeometry::Plane in = g.input_plane(image, ch);
  A sum = 0;
  for_each_input_tap<R, S>(g, row, col, [&](int tap, int i, int j) {
    sum += static_cast<A>(x[in.at(i, j)]) * static_cast<A>(filter.at(ch, tap));
  });
  return sum;
}

// The output index o whose tap at offset `reach` lands on input index `at` (o stride - pad + reach = at), or
// -1 when there is none (a stride of 1, the common case, skips the division).
EFFNET_HOST_DEVICE inline int depthwise_source(int at, int pad, int reach, int stride, int outputs) {
  const int scaled = at + pad - reach;
  if (scaled < 0) return -1;
  int o = scaled;
  if (stride != 1) {
    if (scaled % stride != 0) return -1;
    o = scaled / stride;
  }
  return o < outputs ? o : -1;
}

// grad_x[n, ch, row, col]: the output pixels whose taps reach (row, col), gathered (no atomics). The S
// output columns are found once, not once per filter row.
template <int R, int S, class A, class T>
EFFNET_HOST_DEVICE A depthwise_input_grad(const DepthwiseGeometry& g, const T* grad_y, const DepthwiseFilter<T>& filter,
                                          int64_t image, int64_t ch, int row, int col) {
  const DepthwiseGeometry::Plane out = g.output_plane(image, ch);
  int columns[S];
EFFNET_UNROLL
  for (int s = 0; s < S; ++s) {
    columns[s] = depthwise_source(col, static_cast<int>(g.pad_w), s * static_cast<int>(g.dilation_w),
                                  static_cast<int>(g.stride_w), static_cast<int>(g.q));
  }
  A sum = 0;
EFFNET_UNROLL
  for (int r = 0; r < R; ++r) {
    const int p = depthwise_source(row, static_cast<int>(g.pad_h), r * static_cast<int>(g.dilation_h),
                                   static_cast<int>(g.stride_h), static_cast<int>(g.p));
    if (p < 0) continue;
EFFNET_UNROLL
    for (int s = 0; s < S; ++s) {
      if (columns[s] < 0) continue;
      sum += static_cast<A>(grad_y[out.at(p, columns[s])]) * static_cast<A>(filter.at(ch, r * S + s));
    }
  }
  return sum;
}

// Adds output pixel (row, col)'s terms of grad_w[ch, :, :] to sums[R S] (tap r S + s).
template <int R, int S, class A, class T>
EFFNET_HOST_DEVICE void depthwise_weight_grad_add(const DepthwiseGeometry& g, const T* grad_y, const T* x,
                                                  int64_t image, int64_t ch, int row, int col, A* sums) {
  const A dy = static_cast<A>(grad_y[g.output_plane(image, ch).at(row, col)]);
  const DepthwiseGeometry::Plane in = g.input_plane(image, ch);
  for_each_input_tap<R, S>(g, row, col,
                           [&](int tap, int i, int j) { sums[tap] += dy * static_cast<A>(x[in.at(i, j)]); });
}

}  // namespace effnet
