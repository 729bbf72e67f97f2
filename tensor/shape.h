// Shapes and strides. Strides are in elements, row-major ("contiguous") when each stride is the product of
// the sizes to its right. A broadcast dimension has stride 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace effnet {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// The strides of a 4-D [N, C, H, W] shape stored channels-last: [H W C, 1, W C, C].
Shape channels_last_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

// The NumPy/PyTorch broadcast of two shapes; throws naming `op` and both shapes when they do not broadcast.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Maps a possibly negative dimension into [0, ndim); throws naming `op` when out of range.
int64_t normalize_dim(const char* op, int64_t dim, int64_t ndim);

}  // namespace effnet
