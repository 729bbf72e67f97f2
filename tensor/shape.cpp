#include "tensor/shape.h"

#include <sstream>

#include "tensor/error.h"

namespace effnet {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    strides[k] = stride;
    stride *= shape[k] > 1 ? shape[k] : 1;
  }
  return strides;
}

Shape channels_last_strides(const Shape& shape) {
  EFFNET_CHECK(shape.size() == 4, "channels-last strides need a 4-D [N, C, H, W] shape, got ", shape_str(shape));
  const int64_t c = shape[1], h = shape[2], w = shape[3];
  return {h * w * c, 1, w * c, c};
}

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t k = 0; k < shape.size(); ++k) os << (k ? ", " : "") << shape[k];
  os << ']';
  return os.str();
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  Shape out(n);
  for (size_t k = 0; k < n; ++k) {
    // Align from the right; missing leading dims count as 1.
    const int64_t sa = k + a.size() >= n ? a[k + a.size() - n] : 1;
    const int64_t sb = k + b.size() >= n ? b[k + b.size() - n] : 1;
    EFFNET_CHECK(sa == sb || sa == 1 || sb == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                 " do not broadcast (dim ", k, ": ", sa, " vs ", sb, ")");
    out[k] = sa == 1 ? sb : sa;
  }
  return out;
}

int64_t normalize_dim(const char* op, int64_t dim, int64_t ndim) {
  const int64_t lo = ndim > 0 ? -ndim : -1, hi = ndim > 0 ? ndim - 1 : 0;
  EFFNET_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " is out of range for a ", ndim,
               "-D tensor (expected ", lo, " to ", hi, ")");
  return dim < 0 ? dim + (ndim > 0 ? ndim : 1) : dim;
}

}  // namespace effnet
