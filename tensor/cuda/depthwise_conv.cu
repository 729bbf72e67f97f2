// effnet's own depthwise convolutions (groups = C = K, 3x3 or 5x5 filters, any stride, padding and
// dilation; float16, bfloat16, float32, float64; row-major or channels-last), the forward product and its two
// gradients. cuDNN's legacy API runs these far below memory speed: on an H200, B4's bf16 channels-last
// depthwise convolutions took 110 ms of a 186 ms training step where the bytes they must move take about
// 2 ms (docs/performance.md). The sums are tensor/depthwise_math.h's; this file maps them onto threads.
//
//   N batch   C channels   H, W input height, width   P, Q output height, width   R, S filter height, width
//   A = compute_t<T> holds every sum (float32, or float64 for float64)
//
//   forward          a thread per output element, in memory order (grid (blocks, N): the elements of one
//                    image, C P Q, are contiguous in both layouts), so that writes are coalesced and
//                    neighbouring threads read neighbouring inputs (neighbouring channels in NHWC, pixels in
//                    NCHW); the R S input reads of neighbouring outputs overlap and come from the caches;
//                    NHWC reads the filter from a taps-major copy, [R S, C], for the same reason
//   backward input   a thread per input element, gathering the outputs its taps reached
//   backward weight  grad_w[c, r, s] sums N P Q products: blocks of one channel tile and one of S' splits
//                    of the N P Q output pixels keep R S partial sums per thread in registers, add them up
//                    within the block, and write them to a [C, S', R S] scratch that one thread per
//                    (c, tap) adds up in split order, so results are deterministic
//                    NHWC: block (32, 8), thread (t, r) takes channel 32 b + t and every 8th pixel from r,
//                    a warp reading 32 neighbouring channels of one pixel
//                    NCHW: grid (C, S'), 256 threads per block walk the split's pixels of channel c
// Indices within an image, and the pixel index n P Q of the weight gradient, are below 2^31 and divided in
// 32 bits (IntDivider): a problem past that goes to cuDNN (depthwise_conv_supported).
#include <algorithm>
#include <climits>
#include <memory>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/cuda/launch.cuh"
#include "tensor/depthwise_math.h"
#include "tensor/elementwise_math.h"
#include "tensor/half.h"
#include "tensor/int_divider.h"

namespace effnet::cuda {
namespace {

// How an element index within one image splits into (channel, row, column) of a [C, rows, cols] image in
// the operands' layout.
struct ImageIndex {
  IntDivider by_c, by_cols, by_rows;
  bool channels_last = false;

  ImageIndex(int64_t c, int64_t rows, int64_t cols, bool nhwc)
      : by_c(static_cast<uint32_t>(c)), by_cols(static_cast<uint32_t>(cols)), by_rows(static_cast<uint32_t>(rows)),
        channels_last(nhwc) {}

  __device__ void split(uint32_t e, int64_t& ch, int& row, int& col) const {
    if (channels_last) {  // e = (row cols + col) C + ch
      const uint32_t pixel = by_c.divide(e), r = by_cols.divide(pixel);
      ch = e - pixel * by_c.divisor;
      row = static_cast<int>(r);
      col = static_cast<int>(pixel - r * by_cols.divisor);
    } else {  // e = (ch rows + row) cols + col
      const uint32_t line = by_cols.divide(e), c = by_rows.divide(line);
      col = static_cast<int>(e - line * by_cols.divisor);
      row = static_cast<int>(line - c * by_rows.divisor);
      ch = c;
    }
  }
};

// Images of a launch: gridDim.y of them at once, the rest by looping (a batch may pass 65535).
constexpr int64_t kMaxGridY = 65535;

// What a thread per element computes: an output value, or an input gradient.
enum class Gather { Output, InputGrad };

// grid (blocks, min(N, 65535)): out[n, e] for every element e of image n, e in memory order: y (C P Q
// elements per image) from x, or grad_x (C H W) from grad_y.
template <Gather G, int R, int S, class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kThreads)
    gather_kernel(DepthwiseGeometry g, ImageIndex index, uint32_t image_elements, const T* source,
                  DepthwiseFilter<T> w, T* out) {
  const uint32_t stride = gridDim.x * blockDim.x;  // e + stride < 2^32: image_elements < 2^31
  for (int64_t n = blockIdx.y; n < g.n; n += gridDim.y) {
    T* image = out + n * image_elements;
    for (uint32_t e = blockIdx.x * blockDim.x + threadIdx.x; e < image_elements; e += stride) {
      int64_t ch;
      int row, col;
      index.split(e, ch, row, col);
      if constexpr (G == Gather::Output) {
        image[e] = static_cast<T>(depthwise_output<R, S, A>(g, source, w, n, ch, row, col));
      } else {
        image[e] = static_cast<T>(depthwise_input_grad<R, S, A>(g, source, w, n, ch, row, col));
      }
    }
  }
}

// Output pixel j < N P Q as (image, row, column).
struct PixelIndex {
  IntDivider by_pq, by_q;
  __device__ void split(uint32_t j, int64_t& image, int& row, int& col) const {
    const uint32_t n = by_pq.divide(j), pixel = j - n * by_pq.divisor, r = by_q.divide(pixel);
    image = n;
    row = static_cast<int>(r);
    col = static_cast<int>(pixel - r * by_q.divisor);
  }
};

// A thread's R S sums of channel ch's weight gradient over the output pixels of its block's split
// (blockIdx.y of gridDim.y, of `pixels` pixels in all), from `first` within the split on, `step` apart.
template <int R, int S, class T, class A>
__device__ __forceinline__ void split_sums(const DepthwiseGeometry& g, const PixelIndex& index, uint32_t pixels,
                                           int64_t ch, uint32_t first, uint32_t step, const T* grad_y, const T* x,
                                           A* sums) {
#pragma unroll
  for (int t = 0; t < R * S; ++t) sums[t] = 0;
  const uint32_t chunk = (pixels + gridDim.y - 1) / gridDim.y;
  const uint32_t begin = min(pixels, blockIdx.y * chunk), end = min(pixels, begin + chunk);
  for (uint32_t j = begin + first; j < end; j += step) {
    int64_t n;
    int row, col;
    index.split(j, n, row, col);
    depthwise_weight_grad_add<R, S>(g, grad_y, x, n, ch, row, col, sums);
  }
}

// grid (ceil(C / 32), S'), block (32, 8): partial[(c S' + s) R S + tap].
template <int R, int S, class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kTile * kRows)
    weight_grad_nhwc_kernel(DepthwiseGeometry g, PixelIndex index, uint32_t pixels, const T* grad_y, const T* x,
                            A* partial) {
  __shared__ A rows[kRows][kTile];
  const int64_t ch = int64_t{blockIdx.x} * kTile + threadIdx.x;
  A sums[R * S];
  split_sums<R, S>(g, index, ch < g.c ? pixels : 0, ch, threadIdx.y, kRows, grad_y, x, sums);
#pragma unroll
  for (int t = 0; t < R * S; ++t) {
    rows[threadIdx.y][threadIdx.x] = sums[t];
    __syncthreads();
    if (threadIdx.y == 0 && ch < g.c) {
      A sum = rows[0][threadIdx.x];
      for (int r = 1; r < kRows; ++r) sum += rows[r][threadIdx.x];
      partial[(ch * gridDim.y + blockIdx.y) * (R * S) + t] = sum;
    }
    __syncthreads();  // before the next tap overwrites `rows`
  }
}

// grid (C, S'), kThreads threads: the same partial sums for row-major operands.
template <int R, int S, class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kThreads)
    weight_grad_nchw_kernel(DepthwiseGeometry g, PixelIndex index, uint32_t pixels, const T* grad_y, const T* x,
                            A* partial) {
  __shared__ A shared[kWarpSize + 1];
  const int64_t ch = blockIdx.x;
  A sums[R * S];
  split_sums<R, S>(g, index, pixels, ch, threadIdx.x, blockDim.x, grad_y, x, sums);
#pragma unroll
  for (int t = 0; t < R * S; ++t) {
    const A sum = block_reduce(sums[t], Sum{}, shared);  // which may be called again at once
    if (threadIdx.x == 0) partial[(ch * gridDim.y + blockIdx.y) * (R * S) + t] = sum;
  }
}

// grad_w[c, tap] (grid-stride over C R S): the sum of its S' partial sums, in split order.
template <class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kThreads)
    weight_grad_sum_kernel(int64_t entries, int64_t taps, int64_t splits, const A* partial, T* grad_w) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < entries; i += stride) {
    const int64_t ch = i / taps, tap = i - ch * taps;
    A sum = 0;
    for (int64_t s = 0; s < splits; ++s) sum += partial[(ch * splits + s) * taps + tap];
    grad_w[i] = static_cast<T>(sum);
  }
}

DepthwiseGeometry geometry_of(const Tensor& x, const Tensor& y, const Conv2dGeometry& g) {
  DepthwiseGeometry d;
  d.n = x.size(0);
  d.c = x.size(1);
  d.h = x.size(2);
  d.w = x.size(3);
  d.p = y.size(2);
  d.q = y.size(3);
  d.stride_h = g.stride_h;
  d.stride_w = g.stride_w;
  d.pad_h = g.pad_h;
  d.pad_w = g.pad_w;
  d.dilation_h = g.dilation_h;
  d.dilation_w = g.dilation_w;
  d.channels_last = x.suggest_memory_format() == MemoryFormat::ChannelsLast;
  return d;
}

// Calls f(std::integral_constant<int, K>) for a K x K filter this file has kernels for.
template <class F>
void with_filter_size(int64_t k, F&& f) {
  switch (k) {
    case 3: return f(std::integral_constant<int, 3>{});
    case 5: return f(std::integral_constant<int, 5>{});
    default: EFFNET_CHECK(false, "cuda depthwise convolution: no kernel for a ", k, "x", k, " filter");
  }
}

dim3 image_grid(int64_t image_elements, int64_t n, const Context& ctx) {
  return dim3(grid_for(image_elements, ctx), static_cast<unsigned>(std::min(n, kMaxGridY)));
}

// wt[t C + c] = w[c taps + t]: the filter taps-major (grid-stride over its C taps values).
template <class T>
__global__ void __launch_bounds__(kThreads) taps_major_kernel(int64_t c, int64_t taps, const T* w, T* wt) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < c * taps; i += stride) {
    const int64_t t = i / c, ch = i - t * c;
    wt[i] = w[ch * taps + t];
  }
}

// out's images [C, rows, cols], a thread per element. Channels-last threads read the filter taps-major
// (copied so first), so that a warp's 32 neighbouring channels read one run of it instead of 32 values
// R S apart.
template <Gather G>
void gather(const char* op, const DepthwiseGeometry& d, const Tensor& source, const Tensor& w, const Tensor& out) {
  const int device = out.device().index;
  const Context& ctx = context(device);
  const int64_t image_elements = out.numel() / d.n, taps = w.size(2) * w.size(3);
  const ImageIndex index(d.c, out.size(2), out.size(3), d.channels_last);
  with_computable_type(out.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    DepthwiseFilter<T> filter{static_cast<const T*>(w.data_ptr()), taps, 1};
    std::shared_ptr<Storage> taps_major;
    if (d.channels_last) {
      taps_major = allocate(static_cast<size_t>(d.c * taps) * sizeof(T), Device::cuda(device));
      T* wt = static_cast<T*>(taps_major->data());
      taps_major_kernel<T><<<grid_for(d.c * taps, ctx), kThreads, 0, ctx.stream>>>(d.c, taps, filter.w, wt);
      EFFNET_CUDA_CHECK_LAUNCH();
      filter = {wt, 1, d.c};
    }
    with_filter_size(w.size(2), [&](auto k) {
      constexpr int K = decltype(k)::value;
      gather_kernel<G, K, K, T><<<image_grid(image_elements, d.n, ctx), kThreads, 0, ctx.stream>>>(
          d, index, static_cast<uint32_t>(image_elements), static_cast<const T*>(source.data_ptr()), filter,
          static_cast<T*>(out.data_ptr()));
      EFFNET_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace

bool depthwise_conv_supported(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g) {
  if (x.dim() != 4 || w.dim() != 4 || y.dim() != 4) return false;
  const int64_t c = x.size(1);
  if (g.groups != c || w.size(0) != c || w.size(1) != 1 || y.size(1) != c || x.size(0) != y.size(0)) return false;
  if (w.size(2) != w.size(3) || (w.size(2) != 3 && w.size(2) != 5)) return false;
  const MemoryFormat format = x.suggest_memory_format();
  if (!x.is_contiguous(format) || !w.is_contiguous(format) || !y.is_contiguous(format)) return false;
  // 32-bit indices within an image and over the N P Q pixels, with room for a grid stride on top.
  const int64_t limit = INT32_MAX;
  return x.numel() / std::max<int64_t>(1, x.size(0)) <= limit && y.numel() / std::max<int64_t>(1, y.size(0)) <= limit &&
         y.size(0) * y.size(2) * y.size(3) <= limit;
}

void depthwise_conv2d(const Tensor& x, const Tensor& w, const Conv2dGeometry& g, const Tensor& y) {
  gather<Gather::Output>("cuda depthwise conv2d", geometry_of(x, y, g), x, w, y);
}

void depthwise_conv2d_backward_input(const Tensor& grad_y, const Tensor& w, const Conv2dGeometry& g,
                                     const Tensor& grad_x) {
  gather<Gather::InputGrad>("cuda depthwise conv2d_backward_input", geometry_of(grad_x, grad_y, g), grad_y, w,
                            grad_x);
}

void depthwise_conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dGeometry& g,
                                      const Tensor& grad_w) {
  const DepthwiseGeometry d = geometry_of(x, grad_y, g);
  const int device = grad_w.device().index;
  const Context& ctx = context(device);
  const int64_t pixels = d.n * d.p * d.q, taps = grad_w.size(2) * grad_w.size(3);
  const PixelIndex index{IntDivider(static_cast<uint32_t>(std::max<int64_t>(1, d.p * d.q))),
                         IntDivider(static_cast<uint32_t>(std::max<int64_t>(1, d.q)))};
  with_computable_type(x.dtype(), "cuda depthwise conv2d_backward_weight", [&](auto zero) {
    using T = decltype(zero);
    using A = compute_t<T>;
    const T* dy = static_cast<const T*>(grad_y.data_ptr());
    const T* in = static_cast<const T*>(x.data_ptr());
    const int64_t channel_blocks = d.channels_last ? (d.c + kTile - 1) / kTile : d.c;
    // Splits of the N P Q pixels: blocks enough to fill the GPU, each thread keeping at least 16 pixels.
    const int64_t splits = splits_to_fill(channel_blocks, pixels, d.channels_last ? kRows : kThreads, 16, ctx);
    const std::shared_ptr<Storage> scratch =
        allocate(static_cast<size_t>(d.c * splits * taps) * sizeof(A), Device::cuda(device));
    A* partial = static_cast<A*>(scratch->data());
    with_filter_size(grad_w.size(2), [&](auto k) {
      constexpr int K = decltype(k)::value;
      const dim3 grid(static_cast<unsigned>(channel_blocks), static_cast<unsigned>(splits));
      if (d.channels_last) {
        weight_grad_nhwc_kernel<K, K, T><<<grid, dim3(kTile, kRows), 0, ctx.stream>>>(
            d, index, static_cast<uint32_t>(pixels), dy, in, partial);
      } else {
        weight_grad_nchw_kernel<K, K, T><<<grid, kThreads, 0, ctx.stream>>>(d, index, static_cast<uint32_t>(pixels),
                                                                             dy, in, partial);
      }
      EFFNET_CUDA_CHECK_LAUNCH();
    });
    const int64_t entries = d.c * taps;
    weight_grad_sum_kernel<T><<<grid_for(entries, ctx), kThreads, 0, ctx.stream>>>(entries, taps, splits, partial,
                                                                                  static_cast<T*>(grad_w.data_ptr()));
    EFFNET_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace effnet::cuda
