// Strided indexing shared by the CPU loops and the CUDA kernels.
//
// A tensor of shape (s0, ..., s{d-1}) and strides (t0, ..., t{d-1}) stores element (i0, ..., i{d-1}) at
//   offset = sum_k i_k * t_k.
// An elementwise kernel walks the output in row-major order by a linear index n; StridedIndex turns n into
// the offset of the same element in an operand that may be a view (permuted, sliced, or broadcast with
// stride 0). Adjacent dims that are contiguous in every operand are merged first (coalesce_dims), so a
// contiguous tensor costs one division chain of length 1.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/error.h"
#include "tensor/host_device.h"

namespace effnet {

constexpr int kMaxDims = 8;

struct StridedIndex {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  EFFNET_HOST_DEVICE int64_t offset(int64_t linear) const {
    int64_t off = 0;
    for (int k = ndim - 1; k >= 0; --k) {
      int64_t i = linear % sizes[k];
      linear /= sizes[k];
      off += i * strides[k];
    }
    return off;
  }
};

// Reorders the dims of shape and of every stride list into the memory order of the first list (largest
// stride outermost; a stable sort, so a row-major first operand keeps its order). Elementwise loops call it
// before coalesce_dims, so that channels-last tensors, whose logical order N, C, H, W is not their memory
// order, merge into one contiguous run as row-major ones do. Only for loops whose result does not depend on
// the order in which elements are visited.
void order_dims_by_memory(std::vector<int64_t>& shape, std::vector<std::vector<int64_t>*> strides);

// Merges dims that can be walked as one for all the given stride lists (same shape for all).
// Returns the merged shape and rewrites each stride list in place.
std::vector<int64_t> coalesce_dims(const std::vector<int64_t>& shape, std::vector<std::vector<int64_t>*> strides);

StridedIndex make_strided_index(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides);

}  // namespace effnet
