#include "tensor/indexing.h"

#include <algorithm>
#include <functional>

#include "tensor/shape.h"

namespace effnet {

std::vector<int64_t> coalesce_dims(const std::vector<int64_t>& shape, std::vector<std::vector<int64_t>*> strides) {
  std::vector<int64_t> merged;
  std::vector<std::vector<int64_t>> merged_strides(strides.size());
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) continue;  // a size-1 dim never moves the offset
    bool can_merge = !merged.empty();
    for (size_t t = 0; t < strides.size() && can_merge; ++t) {
      // The previous (outer) dim continues this one when outer stride = inner stride * inner size.
      can_merge = merged_strides[t].back() == (*strides[t])[k] * shape[k];
    }
    if (can_merge) {
      merged.back() *= shape[k];
      for (size_t t = 0; t < strides.size(); ++t) merged_strides[t].back() = (*strides[t])[k];
    } else {
      merged.push_back(shape[k]);
      for (size_t t = 0; t < strides.size(); ++t) merged_strides[t].push_back((*strides[t])[k]);
    }
  }
  for (size_t t = 0; t < strides.size(); ++t) *strides[t] = std::move(merged_strides[t]);
  return merged;
}

void order_dims_by_memory(std::vector<int64_t>& shape, std::vector<std::vector<int64_t>*> strides) {
  if (strides.empty() || shape.size() < 2) return;
  const std::vector<int64_t>& first = *strides[0];
  // Row-major already (every op on row-major tensors): nothing to move, nothing to allocate.
  if (std::is_sorted(first.begin(), first.end(), std::greater<int64_t>())) return;
  std::vector<size_t> order(shape.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return first[a] > first[b]; });
  auto permuted = [&](const std::vector<int64_t>& v) {
    std::vector<int64_t> out(v.size());
    for (size_t k = 0; k < order.size(); ++k) out[k] = v[order[k]];
    return out;
  };
  shape = permuted(shape);
  for (std::vector<int64_t>* s : strides) *s = permuted(*s);
}

StridedIndex make_strided_index(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  EFFNET_CHECK(shape.size() <= static_cast<size_t>(kMaxDims), "tensors of more than ", kMaxDims,
               " dims (after merging contiguous dims) are not supported; got shape ", shape_str(shape));
  StridedIndex index;
  index.ndim = static_cast<int>(shape.size());
  for (size_t k = 0; k < shape.size(); ++k) {
    index.sizes[k] = shape[k];
    index.strides[k] = strides[k];
  }
  return index;
}

}  // namespace effnet
