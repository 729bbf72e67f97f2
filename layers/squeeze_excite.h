// SqueezeExcite (Hu et al.; EfficientNet's variant): a per-channel gate computed from the whole image.
//   s = mean_{H,W} x                      [N, C, 1, 1]
//   s = silu(conv_reduce(s))              1x1 conv with bias, C -> R
//   s = sigmoid(conv_expand(s))           1x1 conv with bias, R -> C
//   y = x * s                             broadcast over H, W
// In EfficientNet R = round(block input channels x 0.25), which the block passes in. With `fused` the gate
// is tensor/nn.h's channel_gate (one backward pass for both gradients) instead of mul; a fused block instead
// takes the gate s alone and hands it with x to its projection convolution (Conv2d::forward_gated).
#pragma once

#include <memory>

#include "layers/conv2d.h"

namespace effnet {

class SqueezeExcite : public Module {
 public:
  SqueezeExcite(int64_t channels, int64_t reduced_channels, bool fused = false);
  Tensor forward(const Tensor& x) override;
  Tensor gate(const Tensor& x);  // s [N, C, 1, 1]

  std::shared_ptr<Conv2d> conv_reduce, conv_expand;

 private:
  bool fused_;
};

}  // namespace effnet
