// The CPU elementwise loop driver. Operands (the output first) share one shape but may have any strides
// (broadcast inputs have stride 0). After merging dims that are contiguous in every operand, the innermost
// dim is walked as a "run" with a fixed stride per operand; the outer dims are indexed with StridedIndex.
// Runs are cut into chunks of at most kChunk elements and the chunks spread over OpenMP threads.
//
//   body(ptrs, strides, n): ptrs[k] = operand k's address of the run's first element (bytes),
//                           strides[k] = its stride in elements, n = run length.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/indexing.h"
#include "tensor/tensor.h"

namespace effnet::cpu {

constexpr int64_t kChunk = 16384;

template <size_t N, class Body>
void for_each_run(const std::array<const Tensor*, N>& operands, Body&& body) {
  const Tensor& out = *operands[0];
  const int64_t numel = out.numel();
  if (numel == 0) return;
  std::vector<std::vector<int64_t>> strides(N);
  std::vector<std::vector<int64_t>*> stride_ptrs;
  for (size_t k = 0; k < N; ++k) {
    strides[k] = operands[k]->strides();
    stride_ptrs.push_back(&strides[k]);
  }
  std::vector<int64_t> shape = out.shape();
  order_dims_by_memory(shape, stride_ptrs);  // channels-last operands: one run, as row-major ones
  shape = coalesce_dims(shape, stride_ptrs);
  if (shape.empty()) {  // a single element
    shape.push_back(1);
    for (auto& s : strides) s.push_back(1);
  }
  const int64_t inner = shape.back();
  const std::vector<int64_t> outer_shape(shape.begin(), shape.end() - 1);
  std::array<StridedIndex, N> outer;
  std::array<int64_t, N> inner_stride;
  std::array<char*, N> base;
  std::array<int64_t, N> esize;
  for (size_t k = 0; k < N; ++k) {
    outer[k] = make_strided_index(outer_shape, std::vector<int64_t>(strides[k].begin(), strides[k].end() - 1));
    inner_stride[k] = strides[k].back();
    base[k] = static_cast<char*>(operands[k]->data_ptr());
    esize[k] = static_cast<int64_t>(element_size(operands[k]->dtype()));
  }
  const int64_t chunks_per_run = (inner + kChunk - 1) / kChunk;
  const int64_t tasks = (numel / inner) * chunks_per_run;
#pragma omp parallel for schedule(static) if (numel > 2 * kChunk)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t row = task / chunks_per_run;
    const int64_t start = (task % chunks_per_run) * kChunk;
    const int64_t n = inner - start < kChunk ? inner - start : kChunk;
    std::array<char*, N> ptrs;
    for (size_t k = 0; k < N; ++k) {
      ptrs[k] = base[k] + (outer[k].offset(row) + start * inner_stride[k]) * esize[k];
    }
    body(ptrs, inner_stride, n);
  }
}

}  // namespace effnet::cpu
