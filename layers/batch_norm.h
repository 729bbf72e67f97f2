// BatchNorm2d: per-channel normalization (tensor/nn.h's batch_norm) with weight (gamma, starts at 1),
// bias (beta, starts at 0) and the buffers running_mean (0), running_var (1) and num_batches_tracked
// (an int64 count of training batches), named as in PyTorch. Training mode normalizes with the batch's
// statistics and updates the running ones with `momentum`; eval mode uses the running ones.
// eps: 1e-5 for timm's efficientnet_bN, 1e-3 for tf_efficientnet_bN.
// forward_silu is silu(forward(x)), the pair every EfficientNet batch norm but the blocks' last forms (timm's
// BatchNormAct2d); with `fuse_silu` it is one fused op (tensor/nn.h's batch_norm_silu), equal to rounding.
#pragma once

#include "layers/module.h"

namespace effnet {

struct BatchNorm2dOptions {
  int64_t channels = 0;
  double eps = 1e-5;
  double momentum = 0.1;
  bool fuse_silu = false;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& options);
  Tensor forward(const Tensor& x) override;
  Tensor forward_silu(const Tensor& x);

  const BatchNorm2dOptions& options() const { return options_; }
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  Tensor normalize(const Tensor& x, bool fused_silu);

  BatchNorm2dOptions options_;
};

}  // namespace effnet
