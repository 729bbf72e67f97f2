// CPU reductions.
//
//   x: any shape and strides;  out: x's rank, size 1 on the reduced dims (contiguous)
//   out[o] = sum or max of x over the elements that map onto o
//
// The input is split into "kept" dims (those of out) and "reduced" dims; each output walks its reduced
// elements with StridedIndex, runs of the innermost reduced dim at a fixed stride. float32 (and float16,
// bfloat16) sums accumulate in double: this loop is the reference the CUDA kernels are compared with.
#include <omp.h>

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "tensor/cpu/kernels.h"
#include "tensor/cpu/loops.h"
#include "tensor/elementwise_math.h"

namespace effnet::cpu {

namespace {

struct ReducePlan {
  StridedIndex kept;     // output index -> input offset
  StridedIndex reduced;  // reduced index (all but the innermost reduced dim) -> input offset
  int64_t run = 1;       // length of the innermost reduced dim
  int64_t run_stride = 0;
  int64_t reduced_numel = 1;
};

ReducePlan plan(const Tensor& x, const Tensor& out) {
  std::vector<int64_t> kept_shape, kept_strides, red_shape, red_strides;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (out.size(k) == x.size(k)) {
      kept_shape.push_back(x.size(k));
      kept_strides.push_back(x.strides()[k]);
    } else {
      red_shape.push_back(x.size(k));
      red_strides.push_back(x.strides()[k]);
    }
  }
  ReducePlan p;
  red_shape = coalesce_dims(red_shape, {&red_strides});
  kept_shape = coalesce_dims(kept_shape, {&kept_strides});
  p.kept = make_strided_index(kept_shape, kept_strides);
  if (!red_shape.empty()) {
    p.run = red_shape.back();
    p.run_stride = red_strides.back();
    red_shape.pop_back();
    red_strides.pop_back();
  }
  p.reduced = make_strided_index(red_shape, red_strides);
  for (int64_t s : red_shape) p.reduced_numel *= s;
  return p;
}

template <class T, class Acc, ReduceOp op>
Acc reduce_range(const T* base, const ReducePlan& p, int64_t first, int64_t last) {
  Acc acc = op == ReduceOp::Sum ? Acc(0) : -std::numeric_limits<Acc>::infinity();
  for (int64_t r = first; r < last; ++r) {
    const T* row = base + p.reduced.offset(r);
    for (int64_t i = 0; i < p.run; ++i) {
      const Acc v = static_cast<Acc>(row[i * p.run_stride]);
      if constexpr (op == ReduceOp::Sum) {
        acc += v;
      } else if (v > acc || v != v) {  // NaN wins, as in PyTorch
        acc = v;
      }
    }
  }
  return acc;
}

// Out: T, or float32 for a 16-bit T (tensor/backend.h).
template <class T, class Out, ReduceOp op>
void reduce_typed(const Tensor& x, const Tensor& out) {
  using Acc = std::conditional_t<op == ReduceOp::Sum, double, compute_t<T>>;
  const ReducePlan p = plan(x, out);
  const T* in = x.data<T>();
  Out* o = out.data<Out>();
  const int64_t outputs = out.numel();
  if (outputs == 1) {
    // One output: the reduced rows are split over the threads in fixed chunks, and the partial results
    // are combined in thread order, so the result does not depend on which thread finishes first.
    const Acc identity = op == ReduceOp::Sum ? Acc(0) : -std::numeric_limits<Acc>::infinity();
    std::vector<Acc> partial(static_cast<size_t>(omp_get_max_threads()), identity);
#pragma omp parallel if (x.numel() > 2 * kChunk)
    {
      Acc local = identity;
#pragma omp for schedule(static)
      for (int64_t r = 0; r < p.reduced_numel; ++r) {
        const Acc v = reduce_range<T, Acc, op>(in, p, r, r + 1);
        if constexpr (op == ReduceOp::Sum) local += v;
        else if (v > local || v != v) local = v;
      }
      partial[static_cast<size_t>(omp_get_thread_num())] = local;
    }
    Acc total = identity;
    for (Acc v : partial) {
      if constexpr (op == ReduceOp::Sum) total += v;
      else if (v > total || v != v) total = v;
    }
    o[0] = static_cast<Out>(total);
    return;
  }
#pragma omp parallel for schedule(static) if (x.numel() > 2 * kChunk)
  for (int64_t i = 0; i < outputs; ++i) {
    o[i] = static_cast<Out>(reduce_range<T, Acc, op>(in + p.kept.offset(i), p, 0, p.reduced_numel));
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, const Tensor& out) {
  with_computable_type(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto out_tag) {
      using Out = decltype(out_tag);
      if (op == ReduceOp::Sum) reduce_typed<T, Out, ReduceOp::Sum>(x, out);
      else reduce_typed<T, Out, ReduceOp::Max>(x, out);
    };
    if (out.dtype() == x.dtype()) return run(T{});
    EFFNET_CHECK(out.dtype() == kFloat32 && is_16bit(x.dtype()), "reduce: ", x.str(), " -> ", out.str(),
                 ": out must have x's dtype, or float32 for a 16-bit x");
    run(float{});
  });
}

void argmax(const Tensor& x, int64_t dim, const Tensor& out) {
  with_floating_type(x.dtype(), "argmax", [&](auto tag) {
    using T = decltype(tag);
    Shape kept_shape = x.shape(), kept_strides = x.strides();
    kept_shape[dim] = 1;
    const StridedIndex kept = make_strided_index(kept_shape, kept_strides);
    const int64_t n = x.size(dim), stride = x.strides()[dim], outputs = out.numel();
    const T* in = x.data<T>();
    int64_t* o = out.data<int64_t>();
#pragma omp parallel for schedule(static) if (x.numel() > 2 * kChunk)
    for (int64_t i = 0; i < outputs; ++i) {
      const T* row = in + kept.offset(i);
      int64_t best = 0;
      T best_value = row[0];
      for (int64_t j = 1; j < n && best_value == best_value; ++j) {
        const T v = row[j * stride];
        if (v > best_value || v != v) {
          best = j;
          best_value = v;
        }
      }
      o[i] = best;
    }
  });
}

}  // namespace effnet::cpu
