#include "layers/batch_norm.h"

#include "autograd/grad_mode.h"
#include "tensor/nn.h"
#include "tensor/ops.h"

namespace effnet {

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& options) : options_(options) {
  const int64_t c = options.channels;
  EFFNET_CHECK(c > 0, "BatchNorm2d: channels must be positive, got ", c);
  EFFNET_CHECK(options.momentum >= 0 && options.momentum <= 1, "BatchNorm2d: momentum must be in [0, 1], got ",
               options.momentum);
  weight = register_parameter("weight", ones({c}));
  bias = register_parameter("bias", zeros({c}));
  running_mean = register_buffer("running_mean", zeros({c}));
  running_var = register_buffer("running_var", ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
}

Tensor BatchNorm2d::forward(const Tensor& x) { return normalize(x, false); }

Tensor BatchNorm2d::forward_silu(const Tensor& x) {
  return options_.fuse_silu ? normalize(x, true) : silu(normalize(x, false));
}

Tensor BatchNorm2d::normalize(const Tensor& x, bool fused_silu) {
  EFFNET_CHECK(x.dim() == 4 && x.size(1) == options_.channels, "BatchNorm2d(", options_.channels,
               "): expected an input [N, ", options_.channels, ", H, W], got ", x.str());
  if (is_training()) {
    autograd::NoGradGuard no_grad;
    num_batches_tracked.add_(1.0);
  }
  const auto op = fused_silu ? batch_norm_silu : batch_norm;
  return op(x, weight, bias, running_mean, running_var, is_training(), options_.momentum, options_.eps);
}

}  // namespace effnet
