#include "layers/dropout.h"

#include "tensor/ops.h"

namespace effnet {

namespace {

void check_probability(const char* layer, double p) {
  EFFNET_CHECK(p >= 0 && p < 1, layer, ": drop probability must be in [0, 1), got ", p);
}

// mask / keep, where mask ~ Bernoulli(keep) has `mask_shape` (broadcast over x), in x's dtype. For a 16-bit x
// (mixed precision) the uniforms are drawn in float32, as a 16-bit uniform would skew the keep rate, and the
// scaled mask is cast.
Tensor scaled_mask(const Tensor& x, double p, const Shape& mask_shape) {
  const double keep = 1.0 - p;
  const TensorOptions options(is_16bit(x.dtype()) ? kFloat32 : x.dtype(), x.device());
  const Tensor mask = lt(rand(mask_shape, options), full({}, keep, options));
  return mul(mask, 1.0 / keep).to(x.dtype());
}

Shape per_sample(const Tensor& x) {
  Shape mask_shape(static_cast<size_t>(x.dim()), 1);
  mask_shape[0] = x.size(0);
  return mask_shape;
}

}  // namespace

Dropout::Dropout(double p) : p_(p) { check_probability("Dropout", p); }

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0) return x;
  return mul(x, scaled_mask(x, p_, x.shape()));
}

DropPath::DropPath(double p) : p_(p) { check_probability("DropPath", p); }

Tensor DropPath::forward(const Tensor& x) {
  if (!is_training() || p_ == 0) return x;
  return mul(x, scaled_mask(x, p_, per_sample(x)));
}

Tensor DropPath::forward_add(const Tensor& x, const Tensor& shortcut) {
  if (!is_training() || p_ == 0) return add(x, shortcut);
  return addcmul(shortcut, x, scaled_mask(x, p_, per_sample(x)));
}

}  // namespace effnet
