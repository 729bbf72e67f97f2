// Elementwise kernels: fill, copy (with a cast), Philox random fills, unary and binary ops, addcmul. The scalar math
// is tensor/elementwise_math.h, shared with the CPU; each (op, type) pair is its own kernel. float16 and
// bfloat16 elements are computed in float32 and rounded once on store, as on the CPU.
//
//   n        elements of the output; thread i of the grid-stride loop handles elements i, i + grid, ...,
//            loading kUnroll of them before storing any
//   operand  0 is the output, then the inputs; all have the output's shape (broadcast inputs: stride 0)
//   layout   the operands' shape in the output's memory order (order_dims_by_memory) after merging dims
//            that are contiguous in all of them (coalesce_dims),
//            with one stride list per operand; when that leaves one dim of stride 1 everywhere, the
//            offsets are the linear index itself (no division)
//
// Random: element i uses the Philox words of counter offset + i, turned into a sample by philox.h exactly
// as the CPU loop does, through the same functions (uniform samples are bit-identical; a normal's log and
// cos may differ from the host libm's by an ulp):
//   uniform  a + (b - a) * u in [a, b),                       u in [0, 1)
//   normal   a + b * z,  z = sqrt(-2 ln(1 - u1)) cos(2 pi u2)   (Box-Muller; a = mean, b = std)
#include <array>
#include <type_traits>
#include <vector>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/cuda/launch.cuh"
#include "tensor/elementwise_math.h"
#include "tensor/indexing.h"
#include "tensor/philox.h"

namespace effnet::cuda {
namespace {

enum class Indexing {
  Contiguous,  // offset = linear index
  Strided32,   // fewer than 2^31 elements: 32-bit divisions, several times cheaper than 64-bit ones
  Strided64,
};

template <int N>
struct Layout {
  StridedIndex index[N];  // the same sizes in every operand, each with its own strides

  template <Indexing kIndexing>
  __device__ __forceinline__ void offsets(int64_t linear, int64_t (&off)[N]) const {
    if constexpr (kIndexing == Indexing::Contiguous) {
      for (int j = 0; j < N; ++j) off[j] = linear;
    } else {
      for (int j = 0; j < N; ++j) off[j] = 0;
      using Index = std::conditional_t<kIndexing == Indexing::Strided32, uint32_t, int64_t>;
      Index rest = static_cast<Index>(linear);
      for (int k = index[0].ndim - 1; k > 0; --k) {
        const Index size = static_cast<Index>(index[0].sizes[k]);
        const Index i = rest % size;
        rest /= size;
        for (int j = 0; j < N; ++j) off[j] += static_cast<int64_t>(i) * index[j].strides[k];
      }
      // What is left is the outermost index: no division needed.
      for (int j = 0; j < N; ++j) off[j] += static_cast<int64_t>(rest) * index[j].strides[0];
    }
  }
};

// f.load(off) reads element `off`'s inputs, f.store(off, value) computes and writes its output; kUnroll
// elements' loads come before their stores, as in for_each_unrolled (written out here because the offsets
// travel from each load to its store: a Layout copied into a helper object would go to local memory).
template <Indexing kIndexing, int N, class F>
__global__ void __launch_bounds__(kThreads) elementwise_kernel(int64_t n, Layout<N> layout, F f) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  for (; i + (kUnroll - 1) * stride < n; i += kUnroll * stride) {
    int64_t off[kUnroll][N];
    decltype(f.load(off[0])) values[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      layout.template offsets<kIndexing>(i + u * stride, off[u]);
      values[u] = f.load(off[u]);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) f.store(off[u], values[u]);
  }
  for (; i < n; i += stride) {
    int64_t off[N];
    layout.template offsets<kIndexing>(i, off);
    f.store(off, f.load(off));
  }
}

template <int N>
struct Plan {
  Layout<N> layout;
  Indexing indexing = Indexing::Contiguous;
};

// operands[0] is the output.
template <int N>
Plan<N> make_plan(const std::array<const Tensor*, N>& operands) {
  const Tensor& out = *operands[0];
  std::array<Shape, N> strides;
  std::vector<std::vector<int64_t>*> stride_lists;
  for (int j = 0; j < N; ++j) {
    EFFNET_CHECK(operands[j]->shape() == out.shape() && operands[j]->device() == out.device(),
                 "cuda elementwise: operand ", operands[j]->str(), " does not match the output ", out.str());
    strides[j] = operands[j]->strides();
    stride_lists.push_back(&strides[j]);
  }
  Shape shape = out.shape();
  order_dims_by_memory(shape, stride_lists);  // channels-last operands: one run, as row-major ones
  shape = coalesce_dims(shape, stride_lists);
  Plan<N> plan;
  bool contiguous = shape.size() <= 1;
  for (int j = 0; j < N; ++j) {
    plan.layout.index[j] = make_strided_index(shape, strides[j]);
    if (shape.size() == 1 && strides[j][0] != 1) contiguous = false;
  }
  if (contiguous || out.numel() == 1) plan.indexing = Indexing::Contiguous;
  else if (out.numel() < (int64_t{1} << 31)) plan.indexing = Indexing::Strided32;
  else plan.indexing = Indexing::Strided64;
  return plan;
}

template <int N, class F>
void launch(const std::array<const Tensor*, N>& operands, const F& f) {
  const Tensor& out = *operands[0];
  const int64_t n = out.numel();
  if (n == 0) return;
  const Plan<N> plan = make_plan<N>(operands);
  const int device = out.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  const unsigned grid = unrolled_grid_for(n, ctx);
  switch (plan.indexing) {
    case Indexing::Contiguous:
      elementwise_kernel<Indexing::Contiguous><<<grid, kThreads, 0, ctx.stream>>>(n, plan.layout, f);
      break;
    case Indexing::Strided32:
      elementwise_kernel<Indexing::Strided32><<<grid, kThreads, 0, ctx.stream>>>(n, plan.layout, f);
      break;
    case Indexing::Strided64:
      elementwise_kernel<Indexing::Strided64><<<grid, kThreads, 0, ctx.stream>>>(n, plan.layout, f);
      break;
  }
  EFFNET_CUDA_CHECK_LAUNCH();
}

struct Nothing {};

template <class T>
struct FillFn {
  T* out;
  T value;
  __device__ Nothing load(const int64_t*) const { return {}; }
  __device__ void store(const int64_t* off, Nothing) const { out[off[0]] = value; }
};

template <class D, class S>
struct CopyFn {
  D* dst;
  const S* src;
  __device__ S load(const int64_t* off) const { return src[off[1]]; }
  __device__ void store(const int64_t* off, S value) const { dst[off[0]] = static_cast<D>(value); }
};

// T is the element type; the math runs in C = compute_t<T> (float32 for float16 and bfloat16).
template <UnaryOp kOp, class T>
struct UnaryFn {
  using C = compute_t<T>;
  T* out;
  const T* x;
  C alpha;
  __device__ T load(const int64_t* off) const { return x[off[1]]; }
  __device__ void store(const int64_t* off, T value) const {
    out[off[0]] = static_cast<T>(math::unary<kOp, C>(static_cast<C>(value), alpha));
  }
};

template <class T, int K>
struct Inputs {
  T v[K];
};

template <BinaryOp kOp, class T>
struct BinaryFn {
  using C = compute_t<T>;
  T* out;
  const T* a;
  const T* b;
  __device__ Inputs<T, 2> load(const int64_t* off) const { return {{a[off[1]], b[off[2]]}}; }
  __device__ void store(const int64_t* off, const Inputs<T, 2>& in) const {
    out[off[0]] = static_cast<T>(math::binary<kOp, C>(static_cast<C>(in.v[0]), static_cast<C>(in.v[1])));
  }
};

template <class T>
struct AddcmulFn {
  T* out;
  const T* a;
  const T* b;
  const T* c;
  __device__ Inputs<T, 3> load(const int64_t* off) const { return {{a[off[1]], b[off[2]], c[off[3]]}}; }
  __device__ void store(const int64_t* off, const Inputs<T, 3>& in) const {
    out[off[0]] = math::add_product(in.v[0], in.v[1], in.v[2]);
  }
};

template <class T, RandomKind kKind>
__global__ void __launch_bounds__(kThreads)
    random_kernel(T* out, int64_t n, double a, double b, uint64_t seed, uint64_t offset) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    const philox::Words w = philox::generate(seed, offset + static_cast<uint64_t>(i));
    if constexpr (kKind == RandomKind::Uniform) out[i] = philox::uniform_between<T>(w, a, b);
    else out[i] = philox::normal_with<T>(w, a, b);
  }
}

}  // namespace

void fill(const Tensor& dst, double value) {
  with_copyable_type(dst.dtype(), "cuda fill", [&](auto zero) {
    using T = decltype(zero);
    launch<1>({&dst}, FillFn<T>{static_cast<T*>(dst.data_ptr()), static_cast<T>(value)});
  });
}

void copy(const Tensor& dst, const Tensor& src) {
  with_copyable_type(dst.dtype(), "cuda copy", [&](auto dst_zero) {
    with_copyable_type(src.dtype(), "cuda copy", [&](auto src_zero) {
      using D = decltype(dst_zero);
      using S = decltype(src_zero);
      const CopyFn<D, S> f{static_cast<D*>(dst.data_ptr()), static_cast<const S*>(src.data_ptr())};
      launch<2>({&dst, &src}, f);
    });
  });
}

void random(const Tensor& dst, RandomKind kind, double a, double b, uint64_t seed, uint64_t offset) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  EFFNET_CHECK(dst.is_contiguous(), "cuda random: dst must be contiguous, got ", dst.str());
  const int device = dst.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  const unsigned grid = grid_for(n, ctx);
  with_floating_type(dst.dtype(), "cuda random", [&](auto zero) {
    using T = decltype(zero);
    auto* out = static_cast<T*>(dst.data_ptr());
    if (kind == RandomKind::Uniform) {
      random_kernel<T, RandomKind::Uniform><<<grid, kThreads, 0, ctx.stream>>>(out, n, a, b, seed, offset);
    } else {
      random_kernel<T, RandomKind::Normal><<<grid, kThreads, 0, ctx.stream>>>(out, n, a, b, seed, offset);
    }
    EFFNET_CUDA_CHECK_LAUNCH();
  });
}

void unary(UnaryOp op, const Tensor& x, double alpha, const Tensor& out) {
  EFFNET_CHECK(x.dtype() == out.dtype(), "cuda unary: dtypes differ: ", x.str(), " -> ", out.str());
  if (x.dtype() == DType::Int64) {  // counters: only x + alpha
    EFFNET_CHECK(op == UnaryOp::AddScalar, "cuda unary: int64 tensors support only adding a scalar");
    const UnaryFn<UnaryOp::AddScalar, int64_t> f{static_cast<int64_t*>(out.data_ptr()),
                                                 static_cast<const int64_t*>(x.data_ptr()), static_cast<int64_t>(alpha)};
    launch<2>({&out, &x}, f);
    return;
  }
  with_computable_type(out.dtype(), "cuda unary", [&](auto zero) {
    using T = decltype(zero);
    math::with_unary_op(op, [&](auto op_constant) {
      constexpr UnaryOp kOp = decltype(op_constant)::value;
      const UnaryFn<kOp, T> f{static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()),
                              static_cast<compute_t<T>>(alpha)};
      launch<2>({&out, &x}, f);
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  EFFNET_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "cuda binary: dtypes differ: ", a.str(),
               ", ", b.str(), " -> ", out.str());
  with_computable_type(out.dtype(), "cuda binary", [&](auto zero) {
    using T = decltype(zero);
    math::with_binary_op(op, [&](auto op_constant) {
      constexpr BinaryOp kOp = decltype(op_constant)::value;
      const BinaryFn<kOp, T> f{static_cast<T*>(out.data_ptr()), static_cast<const T*>(a.data_ptr()),
                               static_cast<const T*>(b.data_ptr())};
      launch<3>({&out, &a, &b}, f);
    });
  });
}

void addcmul(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& out) {
  EFFNET_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype() && c.dtype() == out.dtype(),
               "cuda addcmul: dtypes differ: ", a.str(), ", ", b.str(), ", ", c.str(), " -> ", out.str());
  with_computable_type(out.dtype(), "cuda addcmul", [&](auto zero) {
    using T = decltype(zero);
    const AddcmulFn<T> f{static_cast<T*>(out.data_ptr()), static_cast<const T*>(a.data_ptr()),
                         static_cast<const T*>(b.data_ptr()), static_cast<const T*>(c.data_ptr())};
    launch<4>({&out, &a, &b, &c}, f);
  });
}

}  // namespace effnet::cuda
