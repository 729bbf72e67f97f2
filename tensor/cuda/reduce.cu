// Reductions: sum and max over a set of dims, and argmax along one dim.
//
//   out[o] = combine over r of x[kept(o) + reduced(r)]
//
//   O        outputs: the product of the kept dims (out is contiguous, so o is out's linear index)
//   R        reduced elements per output: the product of the reduced dims (R = 0 gives the identity)
//   kept     strided index of the kept dims of x, in their order (which is out's row-major order)
//   reduced  strided index of the reduced dims of x, sorted so the smallest stride is innermost
//   S        splits: blocks that share one output when O alone cannot fill the GPU; each writes a partial
//            result to a [O, S] buffer that a second pass reduces
//
// Two kernels, chosen by which group holds the smallest stride of x:
//   row     reduced innermost (e.g. sum over the last dim): a block per output, its threads stride over
//           r so that a warp reads consecutive elements; a shuffle/shared-memory tree combines them.
//           When the reduced dims do not merge into one (N and H*W of NCHW, say), r is walked in runs
//           along the last of them, so the strided offset costs divisions once per run, not per element
//   column  kept innermost (e.g. sum over the batch of [B, C]), or R tiny: a thread per output, so that a
//           warp reads consecutive outputs' elements, with up to 8 threads per output over r, combined in
//           shared memory
// Each thread first accumulates its own strided subset sequentially, then the tree combines the
// threads: float32 sums stay in float32 with an error of about (R / threads + log2 threads) ulps.
//
// float16 and bfloat16 inputs are accumulated in float32, partial results included, and rounded once.
// Max propagates NaN. Argmax treats NaN as larger than any number and returns the first index among ties.
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/kernels.h"
#include "tensor/cuda/launch.cuh"
#include "tensor/elementwise_math.h"
#include "tensor/indexing.h"

namespace effnet::cuda {
namespace {

template <class T>
struct ValueIndex {
  T value;
  int64_t index;
};

template <class T>
__device__ __forceinline__ ValueIndex<T> shfl_down(ValueIndex<T> v, int delta) {
  const auto index = static_cast<int64_t>(__shfl_down_sync(0xffffffffu, v.index, delta));
  return {cuda::shfl_down(v.value, delta), index};
}

// T: the type accumulated and written (float for float16 / bfloat16 inputs, which `load` converts).
template <class T>
struct SumReducer {
  using Acc = T;
  __device__ static Acc identity() { return T(0); }
  template <class In>
  __device__ static Acc load(In v, int64_t) { return static_cast<T>(v); }
  __device__ Acc operator()(Acc a, Acc b) const { return a + b; }
  __device__ static T finish(Acc a) { return a; }
};

template <class T>
struct MaxReducer {
  using Acc = T;
  __device__ static Acc identity() { return -std::numeric_limits<T>::infinity(); }
  template <class In>
  __device__ static Acc load(In v, int64_t) { return static_cast<T>(v); }
  __device__ Acc operator()(Acc a, Acc b) const { return (a != a || a > b) ? a : b; }  // NaN wins
  __device__ static T finish(Acc a) { return a; }
};

template <class T>
struct ArgmaxReducer {
  using Acc = ValueIndex<T>;
  __device__ static Acc identity() { return {-std::numeric_limits<T>::infinity(), INT64_MAX}; }
  __device__ static Acc load(T v, int64_t r) { return {v, r}; }
  __device__ Acc operator()(Acc a, Acc b) const {
    const bool a_nan = a.value != a.value, b_nan = b.value != b.value;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan && a.value != b.value) return a.value > b.value ? a : b;
    return a.index <= b.index ? a : b;
  }
  __device__ static int64_t finish(Acc a) { return a.index; }
};

struct ReducePlan {
  StridedIndex kept, reduced;
  int64_t outputs = 0, count = 0;
  bool inner = false;  // the smallest stride of x is in a reduced dim
};

// Splits x's dims (size-1 dims dropped) into kept and reduced groups and merges each group's dims.
ReducePlan make_plan(const Tensor& x, const std::vector<bool>& is_reduced) {
  Shape kept_shape, kept_strides;
  std::vector<std::pair<int64_t, int64_t>> reduced_dims;  // (stride, size)
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    if (is_reduced[d]) {
      reduced_dims.emplace_back(x.strides()[d], x.size(d));
    } else {
      kept_shape.push_back(x.size(d));
      kept_strides.push_back(x.strides()[d]);
    }
  }
  // The order of reduced dims is free: largest stride outermost gives the longest contiguous runs.
  std::stable_sort(reduced_dims.begin(), reduced_dims.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  Shape reduced_shape, reduced_strides;
  for (const auto& [stride, size] : reduced_dims) {
    reduced_shape.push_back(size);
    reduced_strides.push_back(stride);
  }
  const int64_t min_kept =
      kept_strides.empty() ? INT64_MAX : *std::min_element(kept_strides.begin(), kept_strides.end());
  const int64_t min_reduced =
      reduced_strides.empty() ? INT64_MAX : *std::min_element(reduced_strides.begin(), reduced_strides.end());

  ReducePlan plan;
  plan.outputs = shape_numel(kept_shape);
  plan.count = shape_numel(reduced_shape);
  plan.inner = min_reduced < min_kept;
  kept_shape = coalesce_dims(kept_shape, {&kept_strides});
  reduced_shape = coalesce_dims(reduced_shape, {&reduced_strides});
  plan.kept = make_strided_index(kept_shape, kept_strides);
  plan.reduced = make_strided_index(reduced_shape, reduced_strides);
  return plan;
}

// grid (output blocks, S), block (threads): block b handles outputs b, b + gridDim.x, ...; out is [O, S].
// kRuns: the reduced index is walked as runs along its last dim (length `run`, at least blockDim.x): the
// threads stride within a run and the splits take every S-th run, so the strided-offset divisions are paid
// once per run instead of once per element. Otherwise r is walked flat (divisions only when the reduced
// dims did not merge into one).
template <class Reducer, bool kRuns, class T, class Out>
__global__ void row_reduce_kernel(const T* x, StridedIndex kept, StridedIndex reduced, int64_t outputs,
                                  int64_t count, Out* out) {
  using Acc = typename Reducer::Acc;
  __shared__ Acc shared[kWarpSize + 1];
  const Reducer combine{};
  const int64_t splits = gridDim.y, split = blockIdx.y;
  for (int64_t o = blockIdx.x; o < outputs; o += gridDim.x) {
    const T* base = x + offset_of(kept, o);
    Acc acc = Reducer::identity();
    if constexpr (kRuns) {
      const int64_t run = reduced.sizes[reduced.ndim - 1], step = reduced.strides[reduced.ndim - 1];
      for (int64_t first = split * run; first < count; first += splits * run) {
        const T* run_base = base + reduced.offset(first);
        for (int64_t i = threadIdx.x; i < run; i += blockDim.x)
          acc = combine(acc, Reducer::load(run_base[i * step], first + i));
      }
    } else {
      for (int64_t r = split * blockDim.x + threadIdx.x; r < count; r += splits * blockDim.x)
        acc = combine(acc, Reducer::load(base[offset_of(reduced, r)], r));
    }
    acc = block_reduce(acc, combine, shared);
    if (threadIdx.x == 0) out[o * splits + split] = Reducer::finish(acc);
  }
}

// grid (output tiles, S), block (tile, ways) with tile * ways = kThreads: thread (t, w) of tile b handles
// output b * tile + t and every ways-th of its reduced elements; out is [O, S].
template <class Reducer, class T, class Out>
__global__ void column_reduce_kernel(const T* x, StridedIndex kept, StridedIndex reduced, int64_t outputs,
                                     int64_t count, Out* out) {
  using Acc = typename Reducer::Acc;
  __shared__ Acc shared[kThreads];
  const Reducer combine{};
  const int64_t splits = gridDim.y, split = blockIdx.y;
  const int tile = blockDim.x, ways = blockDim.y;
  const int t = threadIdx.x, w = threadIdx.y;
  for (int64_t first = int64_t{blockIdx.x} * tile; first < outputs; first += int64_t{gridDim.x} * tile) {
    const int64_t o = first + t;
    Acc acc = Reducer::identity();
    if (o < outputs) {
      const T* base = x + offset_of(kept, o);
      for (int64_t r = split * ways + w; r < count; r += splits * ways)
        acc = combine(acc, Reducer::load(base[offset_of(reduced, r)], r));
    }
    shared[w * tile + t] = acc;
    __syncthreads();
    for (int half = ways / 2; half > 0; half /= 2) {
      if (w < half) shared[w * tile + t] = combine(shared[w * tile + t], shared[(w + half) * tile + t]);
      __syncthreads();
    }
    if (w == 0 && o < outputs) out[o * splits + split] = Reducer::finish(shared[t]);
    __syncthreads();  // the next tile reuses shared
  }
}

int64_t pow2_at_most(int64_t n) {
  int64_t p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Runs `plan` into out ([O] when S is 1). `split_ok` allows a second pass (sum and max; not argmax, whose
// partial results would carry indices).
template <class Reducer, class T, class Out>
void run(const Context& ctx, const T* x, const ReducePlan& plan, Out* out, bool split_ok) {
  const int64_t sms = ctx.properties.multiProcessorCount;
  const int64_t target_blocks = 4 * sms;  // enough resident blocks to cover memory latency
  const bool use_row = plan.inner && plan.count >= kWarpSize;
  // Runs along the last reduced dim when the reduced dims did not merge and that dim can keep a warp busy.
  const int64_t run_length = plan.reduced.ndim > 0 ? plan.reduced.sizes[plan.reduced.ndim - 1] : 1;
  const bool runs = use_row && plan.reduced.ndim >= 2 && run_length >= kWarpSize;
  int64_t threads_per_output, blocks, work_units;  // work_units: what the splits divide
  if (use_row) {
    threads_per_output =
        std::clamp<int64_t>(pow2_at_most(runs ? run_length : 2 * plan.count - 1), kWarpSize, kThreads);
    blocks = plan.outputs;
    work_units = runs ? plan.count / run_length : plan.count / (threads_per_output * 32);
  } else {
    threads_per_output = std::clamp<int64_t>(pow2_at_most(plan.count / 8), 1, 8);
    blocks = ceil_div(plan.outputs, kThreads / threads_per_output);
    work_units = plan.count / (threads_per_output * 32);
  }
  // Splitting pays when the outputs cannot fill the GPU; each split keeps at least one work unit (a run,
  // or 32 elements per thread).
  int64_t splits = 1;
  if (split_ok && blocks < target_blocks)
    splits = std::clamp<int64_t>(std::min(ceil_div(target_blocks, blocks), work_units), 1, 65535);

  Out* dest = out;
  std::shared_ptr<Storage> partial;
  if (splits > 1) {
    partial = allocate(static_cast<size_t>(plan.outputs * splits) * sizeof(Out), Device::cuda(ctx.device));
    dest = static_cast<Out*>(partial->data());
  }
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(blocks, sms * 32)), static_cast<unsigned>(splits));
  const auto threads = static_cast<unsigned>(threads_per_output);
  if (runs) {
    row_reduce_kernel<Reducer, true><<<grid, threads, 0, ctx.stream>>>(x, plan.kept, plan.reduced,
                                                                         plan.outputs, plan.count, dest);
  } else if (use_row) {
    row_reduce_kernel<Reducer, false><<<grid, threads, 0, ctx.stream>>>(x, plan.kept, plan.reduced,
                                                                          plan.outputs, plan.count, dest);
  } else {
    const dim3 block(static_cast<unsigned>(kThreads / threads_per_output),
                     static_cast<unsigned>(threads_per_output));
    column_reduce_kernel<Reducer><<<grid, block, 0, ctx.stream>>>(x, plan.kept, plan.reduced, plan.outputs,
                                                                  plan.count, dest);
  }
  EFFNET_CUDA_CHECK_LAUNCH();
  if (splits > 1) {
    // The partials are [O, S] contiguous: reduce each row. Freeing `partial` when this returns is safe:
    // the allocator reuses the block only for work queued on this same stream, after this pass.
    ReducePlan second;
    second.outputs = plan.outputs;
    second.count = splits;
    second.inner = true;
    second.kept = make_strided_index({plan.outputs}, {splits});
    second.reduced = make_strided_index({splits}, {1});
    run<Reducer>(ctx, static_cast<const Out*>(dest), second, out, false);
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, const Tensor& out) {
  if (out.numel() == 0) return;
  const bool widening = out.dtype() == kFloat32 && is_16bit(x.dtype());
  EFFNET_CHECK(out.dim() == x.dim() && out.is_contiguous() && (out.dtype() == x.dtype() || widening),
               "cuda reduce: out must be contiguous with x's rank and dtype (or float32 for a 16-bit x), got ",
               x.str(), " -> ", out.str());
  std::vector<bool> is_reduced(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) {
    EFFNET_CHECK(out.size(d) == x.size(d) || out.size(d) == 1, "cuda reduce: ", out.str(),
                 " is not a keepdim reduction of ", x.str());
    is_reduced[d] = out.size(d) != x.size(d);
  }
  const ReducePlan plan = make_plan(x, is_reduced);
  const int device = out.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  with_computable_type(x.dtype(), "cuda reduce", [&](auto zero) {
    using T = decltype(zero);
    using C = compute_t<T>;
    const auto* px = static_cast<const T*>(x.data_ptr());
    // 16-bit inputs: partial and final results in float32, one rounding at the end (none into a float32 out).
    Tensor result = out;
    if (!std::is_same_v<T, C> && !widening) {
      result = make_tensor(allocate(static_cast<size_t>(out.numel()) * sizeof(C), out.device()), out.shape(),
                           contiguous_strides(out.shape()), 0, dtype_of<C>());
    }
    auto* po = static_cast<C*>(result.data_ptr());
    if (op == ReduceOp::Sum) run<SumReducer<C>>(ctx, px, plan, po, true);
    else run<MaxReducer<C>>(ctx, px, plan, po, true);
    if (result.data_ptr() != out.data_ptr()) copy(out, result);
  });
}

void argmax(const Tensor& x, int64_t dim, const Tensor& out) {
  dim = normalize_dim("argmax", dim, x.dim());
  if (out.numel() == 0) return;
  EFFNET_CHECK(out.dim() == x.dim() && out.is_contiguous() && out.dtype() == DType::Int64 &&
                   (x.dim() == 0 || out.size(dim) == 1),
               "cuda argmax: expected a contiguous int64 out with size 1 at dim ", dim, ", got ", x.str(),
               " -> ", out.str());
  std::vector<bool> is_reduced(x.dim(), false);
  if (x.dim() > 0) is_reduced[dim] = true;  // a 0-d x is its own maximum, at index 0
  const ReducePlan plan = make_plan(x, is_reduced);
  const int device = out.device().index;
  const Context& ctx = context(device);
  DeviceGuard guard(device);
  with_floating_type(x.dtype(), "cuda argmax", [&](auto zero) {
    using T = decltype(zero);
    const auto* px = static_cast<const T*>(x.data_ptr());
    run<ArgmaxReducer<T>>(ctx, px, plan, static_cast<int64_t*>(out.data_ptr()), false);
  });
}

}  // namespace effnet::cuda
