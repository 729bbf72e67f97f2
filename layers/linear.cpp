#include "layers/linear.h"

#include <cmath>

#include "tensor/ops.h"

namespace effnet {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias) : in_(in_features), out_(out_features) {
  EFFNET_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got ", in_features, " -> ",
               out_features);
  const double range = 1.0 / std::sqrt(static_cast<double>(out_features));
  Tensor w = empty({out_features, in_features});
  w.uniform_(-range, range);
  weight = register_parameter("weight", w);
  if (with_bias) bias = register_parameter("bias", zeros({out_features}));
}

Tensor Linear::forward(const Tensor& x) {
  EFFNET_CHECK(x.dim() >= 1 && x.size(-1) == in_, "Linear(", in_, " -> ", out_, "): expected an input [..., ", in_,
               "], got ", x.str());
  const Tensor y = matmul(x.dim() == 1 ? x.unsqueeze(0) : x, weight.transpose(0, 1));
  const Tensor out = bias.defined() ? add(y, bias) : y;
  return x.dim() == 1 ? out.squeeze(0) : out;
}

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  EFFNET_CHECK(x.dim() == 4, "GlobalAvgPool2d: expected [N, C, H, W], got ", x.str());
  return mean(x, {2, 3});
}

Tensor Flatten::forward(const Tensor& x) {
  EFFNET_CHECK(x.dim() >= 1, "Flatten: expected at least one dim, got ", x.str());
  return x.dim() == 1 ? x : x.flatten(1);
}

}  // namespace effnet
