// effnet's own batch normalization kernels, training mode: for float16 / bfloat16 activations (x, y, grad_y,
// grad_x) with float32 per-channel tensors (gamma, beta, running and saved statistics, parameter gradients),
// because cuDNN's legacy batch norm does not take bfloat16; and, for every floating dtype, batch norm fused
// with the SiLU that follows it (Activation::Silu), which cuDNN's batch norm cannot apply. float32 and
// float64 without an activation go through cuDNN (batch_norm.cpp). The math is in tensor/backend.h.
//
//   T         the activations' dtype;  A = compute_t<T>: the per-channel tensors' dtype and every sum's
//             (float32, or float64 for float64 x)
//   N batch   C channels   HW pixels per plane   M = N HW values per channel: value j = n HW + k of channel
//             c lies at (n C + c) HW + k (NCHW), or at j C + c (channels-last NHWC, all operands alike)
//   kUnroll   values each thread loads before it uses any of them, in the sums and in the elementwise
//             passes alike (one load in flight per thread leaves the memory idle most of the time)
//   S         splits: blocks that share one channel's M values when C alone cannot fill the GPU; each
//             writes its partial sums to a [C, S] buffer that one thread per channel adds up in a fixed
//             order, so results are deterministic
//   z         the normalized value gamma (x - mean) invstd + beta = x scale + shift, rounded to T (what the
//             unfused batch norm stores); y = z, or silu(z)
//
// Forward:
//   stats      grid (C, S) for NCHW, a block per channel and split; grid (C / 32, S) of 32 x 8 blocks for
//              NHWC, a thread per channel so that a warp reads 32 neighbouring channels of one pixel:
//              sum (x - x0) and sum (x - x0)^2 with x0 the channel's first value (a shift
//              near the mean, so the variance does not cancel when |mean| >> std)
//   finalize   a thread per channel: mean, biased var, invstd = 1 / sqrt(var + eps); running statistics
//              (unbiased var M / (M - 1)) and save_mean / save_invstd; scale = gamma invstd and
//              shift = beta - mean scale for the next kernel
//   normalize  elementwise: y = z, or silu(z) (also eval mode's one kernel, with scale and shift from the
//              running statistics)
// Backward (xhat = (x - mean) invstd; dz = dy, or silu'(z) dy with z recomputed from x — with SiLU nothing
// of the forward's output is kept, and dz is recomputed in both passes rather than stored):
//   grad sums  grid (C, S): sum dz and sum dz (x - mean)
//   finalize   grad_beta = sum dz, grad_gamma = invstd sum dz (x - mean); the coefficients of
//   grad input dx = gamma invstd (dz - grad_beta / M - xhat grad_gamma / M)
#include <algorithm>
#include <climits>
#include <initializer_list>
#include <memory>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/cuda/launch.cuh"
#include "tensor/elementwise_math.h"
#include "tensor/half.h"
#include "tensor/int_divider.h"

namespace effnet::cuda {
namespace {

struct Geometry {
  uint32_t n = 0, c = 0, hw = 0, m = 0;
  bool channels_last = false;
  IntDivider by_c, by_hw;  // the elementwise kernels find an element's channel with these
  // Where channel ch's first value lies.
  __device__ int64_t first(uint32_t ch) const { return channels_last ? ch : static_cast<int64_t>(ch) * hw; }
};

// The values of channel `ch` with flat index j in [begin, M) of its M values, `step` apart, as offsets in the
// NCHW tensor: the plane and pixel advance by additions, not divisions.
struct ChannelWalk {
  uint32_t n, k, step_n, step_k;
  __device__ ChannelWalk(const Geometry& g, uint32_t begin, uint32_t step)
      : n(begin / g.hw), k(begin - begin / g.hw * g.hw), step_n(step / g.hw), step_k(step - step / g.hw * g.hw) {}
  __device__ int64_t next(const Geometry& g, uint32_t ch) {
    const int64_t offset = (static_cast<int64_t>(n) * g.c + ch) * g.hw + k;
    n += step_n;
    k += step_k;
    if (k >= g.hw) {
      k -= g.hw;
      ++n;
    }
    return offset;
  }
};

// Adds the terms of kUnroll values, all loaded first, into kUnroll separate pairs of sums.
template <class Terms, class A>
__device__ __forceinline__ void add_terms(const Terms& terms, const int64_t (&offsets)[kUnroll], A (&a)[kUnroll],
                                          A (&b)[kUnroll]) {
  decltype(terms.load(0)) values[kUnroll];
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) values[u] = terms.load(offsets[u]);
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) terms.add(values[u], a[u], b[u]);
}

// The thread's sums of `terms` over the values j = first, first + step, ... below `end` of one channel, the
// offset of value j being offset_of(j), which is called once per j in increasing order (so that the NCHW
// kernel can walk); added in a fixed order.
template <class A, class Terms, class Offset>
__device__ __forceinline__ void channel_sums_of(const Terms& terms, uint32_t first, uint32_t end, uint32_t step,
                                                Offset offset_of, A& a_sum, A& b_sum) {
  A a[kUnroll] = {}, b[kUnroll] = {};
  uint32_t j = first;
  for (; j + (kUnroll - 1) * step < end; j += kUnroll * step) {
    int64_t offsets[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) offsets[u] = offset_of(j + u * step);
    add_terms(terms, offsets, a, b);
  }
  for (; j < end; j += step) terms.add(terms.load(offset_of(j)), a[0], b[0]);
  a_sum = (a[0] + a[1]) + (a[2] + a[3]);
  b_sum = (b[0] + b[1]) + (b[2] + b[3]);
}

// grid (C, S): partial[ch, s] = (sum a(v), sum b(v)) over split s of channel ch.
template <class A, class Terms>
__global__ void __launch_bounds__(kThreads)
    channel_sums_kernel(Geometry g, Terms terms, A* partial_a, A* partial_b) {
  __shared__ A shared[kWarpSize + 1];
  const uint32_t ch = blockIdx.x, s = blockIdx.y, splits = gridDim.y;
  const uint32_t chunk = (g.m + splits - 1) / splits;
  const uint32_t begin = s * chunk, end = min(g.m, begin + chunk);
  A a = 0, b = 0;
  terms.prepare(ch, g.first(ch));
  if (begin + threadIdx.x < end) {
    // The walker visits j in order, as channel_sums_of asks for them.
    ChannelWalk walk(g, begin + threadIdx.x, blockDim.x);
    channel_sums_of(terms, begin + threadIdx.x, end, blockDim.x, [&](uint32_t) { return walk.next(g, ch); }, a, b);
  }
  a = block_reduce(a, Sum{}, shared);
  b = block_reduce(b, Sum{}, shared);
  if (threadIdx.x == 0) {
    partial_a[ch * splits + s] = a;
    partial_b[ch * splits + s] = b;
  }
}

// grid (ceil(C / 32), S), block (32, 8): thread (t, r) of tile b sums channel 32 b + t over every 8th value
// of split s; the 8 partial sums are added in shared memory in a fixed order.
template <class A, class Terms>
__global__ void __launch_bounds__(kTile * kRows)
    channel_sums_nhwc_kernel(Geometry g, Terms terms, A* partial_a, A* partial_b) {
  __shared__ A shared_a[kRows][kTile], shared_b[kRows][kTile];
  const uint32_t ch = blockIdx.x * kTile + threadIdx.x, s = blockIdx.y, splits = gridDim.y;
  const uint32_t chunk = (g.m + splits - 1) / splits;
  const uint32_t begin = s * chunk, end = min(g.m, begin + chunk);
  A a = 0, b = 0;
  if (ch < g.c) {
    terms.prepare(ch, g.first(ch));
    channel_sums_of(terms, begin + threadIdx.y, end, kRows,
                    [&](uint32_t j) { return static_cast<int64_t>(j) * g.c + ch; }, a, b);
  }
  shared_a[threadIdx.y][threadIdx.x] = a;
  shared_b[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y == 0 && ch < g.c) {
    for (int r = 1; r < kRows; ++r) {
      a += shared_a[r][threadIdx.x];
      b += shared_b[r][threadIdx.x];
    }
    partial_a[ch * splits + s] = a;
    partial_b[ch * splits + s] = b;
  }
}

// scale and shift of z = x scale + shift: one function for the forward and the backward's recomputation, so
// both compute the same bits.
template <class A>
__device__ __forceinline__ void affine_of(A gamma, A beta, A mean, A invstd, A& scale, A& shift) {
  scale = gamma * invstd;
  shift = beta - mean * gamma * invstd;
}

// z for one value, rounded to T as the unfused batch norm would store it.
template <class T, class A>
__device__ __forceinline__ A normalized(T x, A scale, A shift) {
  return static_cast<A>(static_cast<T>(static_cast<A>(x) * scale + shift));
}

// The gradient that reaches z: dy itself, or silu'(z) dy rounded to T (what the unfused silu would store).
template <Activation kAct, class T, class A>
__device__ __forceinline__ A grad_of_z(T x, T dy, A scale, A shift) {
  if constexpr (kAct == Activation::Silu) {
    return static_cast<A>(static_cast<T>(
        math::binary<BinaryOp::SiluGrad>(normalized(x, scale, shift), static_cast<A>(dy))));
  } else {
    return static_cast<A>(dy);
  }
}

// Forward terms: (x - x0) and (x - x0)^2. (load reads a value, add adds its terms: channel_sums_of loads
// several values before adding any.)
template <class T>
struct StatsTerms {
  using A = compute_t<T>;
  const T* x;
  A shift = 0;
  __device__ void prepare(uint32_t, int64_t first) { shift = static_cast<A>(x[first]); }
  __device__ T load(int64_t offset) const { return x[offset]; }
  __device__ void add(T value, A& a, A& b) const {
    const A v = static_cast<A>(value) - shift;
    a += v;
    b += v * v;
  }
};

// Backward terms: dz and dz (x - mean).
template <Activation kAct, class T>
struct GradTerms {
  using A = compute_t<T>;
  const T* x;
  const T* dy;
  const A* gamma;
  const A* beta;  // read with SiLU only
  const A* mean;
  const A* invstd;
  A mu = 0, scale = 0, shift = 0;
  __device__ void prepare(uint32_t ch, int64_t) {
    mu = mean[ch];
    if constexpr (kAct == Activation::Silu) affine_of(gamma[ch], beta[ch], mu, invstd[ch], scale, shift);
  }
  struct Value {
    T x, dy;
  };
  __device__ Value load(int64_t offset) const { return {x[offset], dy[offset]}; }
  __device__ void add(Value v, A& a, A& b) const {
    const A d = grad_of_z<kAct>(v.x, v.dy, scale, shift);
    a += d;
    b += d * (static_cast<A>(v.x) - mu);
  }
};

template <class T, class A = compute_t<T>>
__global__ void stats_finalize_kernel(Geometry g, uint32_t splits, const A* partial_sum, const A* partial_squares,
                                      const T* x, const A* gamma, const A* beta, A* running_mean, A* running_var,
                                      A momentum, A eps, A* save_mean, A* save_invstd, A* scale, A* shift) {
  const uint32_t ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= g.c) return;
  double sum = 0, squares = 0;
  for (uint32_t s = 0; s < splits; ++s) {
    sum += partial_sum[ch * splits + s];
    squares += partial_squares[ch * splits + s];
  }
  const double m = g.m, x0 = static_cast<A>(x[g.first(ch)]);
  const double shifted_mean = sum / m;
  const double spread = squares / m - shifted_mean * shifted_mean;
  const double var = spread < 0 ? 0.0 : spread;  // not fmax, which would turn a NaN (x had one) into 0
  const double mean = x0 + shifted_mean;
  const A invstd = static_cast<A>(1.0 / sqrt(var + eps));
  running_mean[ch] = (1 - momentum) * running_mean[ch] + momentum * static_cast<A>(mean);
  running_var[ch] = (1 - momentum) * running_var[ch] + momentum * static_cast<A>(var * m / (m - 1));
  save_mean[ch] = static_cast<A>(mean);
  save_invstd[ch] = invstd;
  affine_of(gamma[ch], beta[ch], static_cast<A>(mean), invstd, scale[ch], shift[ch]);
}

// grad_beta, grad_gamma, and dx = a (dz - b - (x - mean) d) with a = gamma invstd, b = grad_beta / M,
// d = invstd grad_gamma / M; with SiLU also z's scale and shift for the grad-input pass.
template <Activation kAct, class A>
__global__ void grad_finalize_kernel(Geometry g, uint32_t splits, const A* partial_dy, const A* partial_dy_xmu,
                                     const A* gamma, const A* beta, const A* mean, const A* invstd, A* grad_gamma,
                                     A* grad_beta, A* coef_a, A* coef_b, A* coef_d, A* scale, A* shift) {
  const uint32_t ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= g.c) return;
  A sum_dy = 0, sum_dy_xmu = 0;
  for (uint32_t s = 0; s < splits; ++s) {
    sum_dy += partial_dy[ch * splits + s];
    sum_dy_xmu += partial_dy_xmu[ch * splits + s];
  }
  const A is = invstd[ch], m = static_cast<A>(g.m);
  grad_beta[ch] = sum_dy;
  grad_gamma[ch] = is * sum_dy_xmu;
  coef_a[ch] = gamma[ch] * is;
  coef_b[ch] = sum_dy / m;
  coef_d[ch] = is * is * sum_dy_xmu / m;
  if constexpr (kAct == Activation::Silu) affine_of(gamma[ch], beta[ch], mean[ch], is, scale[ch], shift[ch]);
}

// The channel of element i (its memory position, i < 2^31) of an x-shaped operand: i mod C (NHWC), or
// (i / HW) mod C (NCHW), by multiplications (int_divider.h).
__device__ __forceinline__ uint32_t channel_of(const Geometry& g, uint32_t i) {
  return g.channels_last ? g.by_c.remainder(i) : g.by_c.remainder(g.by_hw.divide(i));
}

// The elementwise kernels take fewer than 2^31 elements per launch (32-bit indices; for_image_chunks); each
// thread loads kUnroll elements before it computes and stores them (for_each_unrolled).

// y = z or silu(z) for each element. (The per-channel values are loaded with the element: a load after a
// store may read what the store wrote, as far as the compiler knows, so it would wait for the store.)
template <Activation kAct, class T, class A = compute_t<T>>
struct Normalize {
  Geometry g;
  const T* x;
  const A* scale;
  const A* shift;
  T* y;
  struct Value {
    T x;
    A scale, shift;
  };
  __device__ Value load(uint32_t i) const {
    const uint32_t ch = channel_of(g, i);
    return {x[i], scale[ch], shift[ch]};
  }
  __device__ void store(uint32_t i, Value v) const {
    const A z = normalized(v.x, v.scale, v.shift);
    if constexpr (kAct == Activation::Silu) {
      y[i] = static_cast<T>(math::unary<UnaryOp::Silu>(z, A(0)));
    } else {
      y[i] = static_cast<T>(z);
    }
  }
};

template <Activation kAct, class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kThreads)
    normalize_kernel(uint32_t total, Geometry g, const T* x, const A* scale, const A* shift, T* y) {
  for_each_unrolled(total, Normalize<kAct, T>{g, x, scale, shift, y});
}

// dx = a (dz - b - (x - mean) d) for each element.
template <Activation kAct, class T, class A = compute_t<T>>
struct GradInput {
  Geometry g;
  const T* x;
  const T* dy;
  const A* mean;
  const A* coef_a;
  const A* coef_b;
  const A* coef_d;
  const A* scale;
  const A* shift;
  T* dx;
  struct Value {
    T x, dy;
    A mean, a, b, d, scale, shift;
  };
  __device__ Value load(uint32_t i) const {
    const uint32_t ch = channel_of(g, i);
    Value v{x[i], dy[i], mean[ch], coef_a[ch], coef_b[ch], coef_d[ch], 0, 0};
    if constexpr (kAct == Activation::Silu) {
      v.scale = scale[ch];
      v.shift = shift[ch];
    }
    return v;
  }
  __device__ void store(uint32_t i, const Value& v) const {
    const A xmu = static_cast<A>(v.x) - v.mean;
    A dz;
    if constexpr (kAct == Activation::Silu) {
      dz = grad_of_z<kAct>(v.x, v.dy, v.scale, v.shift);
    } else {
      dz = static_cast<A>(v.dy);
    }
    dx[i] = static_cast<T>(v.a * (dz - v.b - xmu * v.d));
  }
};

template <Activation kAct, class T, class A = compute_t<T>>
__global__ void __launch_bounds__(kThreads)
    grad_input_kernel(uint32_t total, Geometry g, const T* x, const T* dy, const A* mean, const A* coef_a,
                      const A* coef_b, const A* coef_d, const A* scale, const A* shift, T* dx) {
  for_each_unrolled(total, GradInput<kAct, T>{g, x, dy, mean, coef_a, coef_b, coef_d, scale, shift, dx});
}

// Splits per channel: blocks enough to fill the GPU, each thread keeping at least 8 values.
uint32_t splits_for(const Geometry& g, const Context& ctx) {
  const int64_t blocks = g.channels_last ? (g.c + kTile - 1) / kTile : g.c;  // per split
  return static_cast<uint32_t>(splits_to_fill(blocks, g.m, g.channels_last ? kRows : kThreads, 8, ctx));
}

// The per-channel sums of `terms` over split s into partial_a / partial_b [C, S], by the layout's kernel.
template <class A, class Terms>
void channel_sums(const Geometry& g, uint32_t splits, const Terms& terms, A* partial_a, A* partial_b,
                  cudaStream_t stream) {
  if (g.channels_last) {
    const dim3 grid((g.c + kTile - 1) / kTile, splits), block(kTile, kRows);
    channel_sums_nhwc_kernel<A><<<grid, block, 0, stream>>>(g, terms, partial_a, partial_b);
  } else {
    channel_sums_kernel<A><<<dim3(g.c, splits), kThreads, 0, stream>>>(g, terms, partial_a, partial_b);
  }
  EFFNET_CUDA_CHECK_LAUNCH();
}

// The per-channel tensors' dtype for x's: float32 for 16-bit x (mixed precision), x's own otherwise.
DType channel_dtype(const Tensor& x) { return is_16bit(x.dtype()) ? kFloat32 : x.dtype(); }

// The elementwise kernels take at most max_elements_per_call() elements, a whole number of images
// (for_image_chunks). Checked before any kernel runs.
void check_image_size(const char* op, const Tensor& x) {
  EFFNET_CHECK(x.size(1) * x.size(2) * x.size(3) <= max_elements_per_call(), op, ": one image of ", x.str(),
               " has more than ", max_elements_per_call(), " elements");
}

// Also the statistics kernels count a channel's M = N HW values in 32 bits, with room for a step past the end.
void check_sizes(const char* op, const Tensor& x) {
  EFFNET_CHECK(x.size(0) * x.size(2) * x.size(3) <= INT32_MAX, op, ": ", x.str(),
               " has 2^31 values per channel or more");
  check_image_size(op, x);
}

// Calls launch(first, count) over x's elements in chunks of whole images of at most max_elements_per_call()
// elements: the elementwise kernels index in 32 bits, and a chunk that starts at an image keeps channel_of's
// count right (an image is C HW elements). One chunk when x fits. x has elements and passed check_sizes.
template <class F>
void for_image_chunks(const Tensor& x, F&& launch) {
  const int64_t per_image = x.numel() / x.size(0);
  const int64_t images = max_elements_per_call() / per_image;
  for (int64_t first = 0; first < x.size(0); first += images) {
    launch(first * per_image, std::min(images, x.size(0) - first) * per_image);
  }
}

void check(const char* op, const Tensor& x, std::initializer_list<const Tensor*> like_x,
           std::initializer_list<const Tensor*> per_channel) {
  const MemoryFormat format = x.suggest_memory_format();
  EFFNET_CHECK(x.dim() == 4 && x.is_contiguous(format), op,
               ": expected a dense [N, C, H, W] input (row-major or channels-last), got ", x.str());
  for (const Tensor* t : like_x) {
    EFFNET_CHECK(t->shape() == x.shape() && t->is_contiguous(format) && t->dtype() == x.dtype(), op, ": ",
                 t->str(), " does not match the input ", x.str(), " (dtype and memory format)");
  }
  const DType dtype = channel_dtype(x);
  for (const Tensor* t : per_channel) {
    EFFNET_CHECK(t->shape() == Shape{x.size(1)} && t->is_contiguous() && t->dtype() == dtype, op, ": ", t->str(),
                 " should be a contiguous [", x.size(1), "] ", dtype, " tensor for the input ", x.str());
  }
}

Geometry geometry_of(const Tensor& x) {
  Geometry g;
  g.n = static_cast<uint32_t>(x.size(0));
  g.c = static_cast<uint32_t>(x.size(1));
  g.hw = static_cast<uint32_t>(x.size(2) * x.size(3));
  g.m = g.n * g.hw;
  g.channels_last = x.suggest_memory_format() == MemoryFormat::ChannelsLast;
  if (g.c > 0 && g.hw > 0) {
    g.by_c = IntDivider(g.c);
    g.by_hw = IntDivider(g.hw);
  }
  return g;
}

// Scratch of `count` [C] rows of A on the context's stream (the allocator reuses it only for work queued
// after these kernels on that stream).
template <class A>
A* rows(std::shared_ptr<Storage>& holder, int64_t count, int64_t c, int device) {
  holder = allocate(static_cast<size_t>(count * c) * sizeof(A), Device::cuda(device));
  return static_cast<A*>(holder->data());
}

// Calls f(T{}) for x's dtype; anything but a floating dtype is an error naming `op`.
template <class F>
void with_own_type(const Tensor& x, const char* op, F&& f) {
  switch (x.dtype()) {
    case DType::Float16: return f(Float16{});
    case DType::BFloat16: return f(BFloat16{});
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: EFFNET_FAIL(op, ": expected a floating input, got ", x.str());
  }
}

// Calls f(std::integral_constant<Activation, act>{}).
template <class F>
void with_activation(Activation act, F&& f) {
  if (act == Activation::Silu) return f(std::integral_constant<Activation, Activation::Silu>{});
  return f(std::integral_constant<Activation, Activation::None>{});
}

// Per-channel results of sums over no values (M = 0).
void zero_channels(const Context& ctx, std::initializer_list<const Tensor*> channels) {
  for (const Tensor* t : channels) {
    EFFNET_CUDA_CHECK(cudaMemsetAsync(t->data_ptr(), 0, static_cast<size_t>(t->numel()) * element_size(t->dtype()),
                                      ctx.stream));
  }
}

}  // namespace

void own_batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                          const Tensor& running_var, double momentum, double eps, Activation act, const Tensor& y,
                          const Tensor& save_mean, const Tensor& save_invstd) {
  const char* op = "cuda batch_norm (effnet's kernels)";
  check(op, x, {&y}, {&gamma, &beta, &running_mean, &running_var, &save_mean, &save_invstd});
  check_sizes(op, x);
  const Geometry g = geometry_of(x);
  if (g.c == 0) return;
  const int device = x.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  if (g.m == 0) return zero_channels(ctx, {&save_mean, &save_invstd});
  const uint32_t splits = splits_for(g, ctx);
  with_own_type(x, op, [&](auto zero) {
    using T = decltype(zero);
    using A = compute_t<T>;
    std::shared_ptr<Storage> scratch;
    A* partial_sum = rows<A>(scratch, 2 * int64_t{splits} + 2, g.c, device);
    A* partial_squares = partial_sum + int64_t{splits} * g.c;
    A* scale = partial_sum + 2 * int64_t{splits} * g.c;
    A* shift = scale + g.c;
    const T* px = static_cast<const T*>(x.data_ptr());
    channel_sums(g, splits, StatsTerms<T>{px}, partial_sum, partial_squares, ctx.stream);
    stats_finalize_kernel<T><<<(g.c + kThreads - 1) / kThreads, kThreads, 0, ctx.stream>>>(
        g, splits, partial_sum, partial_squares, px, gamma.data<A>(), beta.data<A>(), running_mean.data<A>(),
        running_var.data<A>(), static_cast<A>(momentum), static_cast<A>(eps), save_mean.data<A>(),
        save_invstd.data<A>(), scale, shift);
    EFFNET_CUDA_CHECK_LAUNCH();
    T* py = static_cast<T*>(y.data_ptr());
    with_activation(act, [&](auto act_tag) {
      for_image_chunks(x, [&](int64_t first, int64_t count) {
        normalize_kernel<decltype(act_tag)::value, T><<<unrolled_grid_for(count, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<uint32_t>(count), g, px + first, scale, shift, py + first);
        EFFNET_CUDA_CHECK_LAUNCH();
      });
    });
  });
}

void own_batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& save_mean, const Tensor& save_invstd, Activation act,
                             const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta) {
  const char* op = "cuda batch_norm_backward (effnet's kernels)";
  check(op, x, {&grad_y, &grad_x}, {&gamma, &save_mean, &save_invstd, &grad_gamma, &grad_beta});
  check_sizes(op, x);
  if (act != Activation::None) check(op, x, {}, {&beta});
  const Geometry g = geometry_of(x);
  if (g.c == 0) return;
  const int device = x.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  if (g.m == 0) return zero_channels(ctx, {&grad_gamma, &grad_beta});
  const uint32_t splits = splits_for(g, ctx);
  with_own_type(x, op, [&](auto zero) {
    using T = decltype(zero);
    using A = compute_t<T>;
    std::shared_ptr<Storage> scratch;
    A* partial_dy = rows<A>(scratch, 2 * int64_t{splits} + 5, g.c, device);
    A* partial_dy_xmu = partial_dy + int64_t{splits} * g.c;
    A* coef_a = partial_dy + 2 * int64_t{splits} * g.c;
    A* coef_b = coef_a + g.c;
    A* coef_d = coef_b + g.c;
    A* scale = coef_d + g.c;
    A* shift = scale + g.c;
    const T* px = static_cast<const T*>(x.data_ptr());
    const T* pdy = static_cast<const T*>(grad_y.data_ptr());
    const A* pbeta = act == Activation::None ? nullptr : beta.data<A>();
    with_activation(act, [&](auto act_tag) {
      constexpr Activation kAct = decltype(act_tag)::value;
      channel_sums(g, splits,
                   GradTerms<kAct, T>{px, pdy, gamma.data<A>(), pbeta, save_mean.data<A>(), save_invstd.data<A>()},
                   partial_dy, partial_dy_xmu, ctx.stream);
      grad_finalize_kernel<kAct><<<(g.c + kThreads - 1) / kThreads, kThreads, 0, ctx.stream>>>(
          g, splits, partial_dy, partial_dy_xmu, gamma.data<A>(), pbeta, save_mean.data<A>(), save_invstd.data<A>(),
          grad_gamma.data<A>(), grad_beta.data<A>(), coef_a, coef_b, coef_d, scale, shift);
      EFFNET_CUDA_CHECK_LAUNCH();
      T* pdx = static_cast<T*>(grad_x.data_ptr());
      for_image_chunks(x, [&](int64_t first, int64_t count) {
        grad_input_kernel<kAct, T><<<unrolled_grid_for(count, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<uint32_t>(count), g, px + first, pdy + first, save_mean.data<A>(), coef_a, coef_b, coef_d,
            scale, shift, pdx + first);
        EFFNET_CUDA_CHECK_LAUNCH();
      });
    });
  });
}

void own_batch_norm_eval(const Tensor& x, const Tensor& scale, const Tensor& shift, Activation act, const Tensor& y) {
  const char* op = "cuda batch_norm_eval";
  check(op, x, {&y}, {&scale, &shift});
  const Geometry g = geometry_of(x);
  if (x.numel() == 0) return;
  check_image_size(op, x);
  const int device = x.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  with_own_type(x, op, [&](auto zero) {
    using T = decltype(zero);
    using A = compute_t<T>;
    with_activation(act, [&](auto act_tag) {
      for_image_chunks(x, [&](int64_t first, int64_t count) {
        normalize_kernel<decltype(act_tag)::value, T><<<unrolled_grid_for(count, ctx), kThreads, 0, ctx.stream>>>(
            static_cast<uint32_t>(count), g, static_cast<const T*>(x.data_ptr()) + first, scale.data<A>(),
            shift.data<A>(), static_cast<T*>(y.data_ptr()) + first);
        EFFNET_CUDA_CHECK_LAUNCH();
      });
    });
  });
}

}  // namespace effnet::cuda
