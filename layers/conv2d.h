// Conv2d: a 2-D convolution layer (tensor/nn.h's conv2d) with its weight [K, C / groups, R, S] and optional
// bias [K], in one of two padding flavours:
//   Symmetric  PyTorch's (timm's efficientnet_bN): pad = ((stride - 1) + dilation (kernel - 1)) / 2 on
//              every side, unless given explicitly;
//   Same       TensorFlow's (tf_efficientnet_bN): per input size i, the total padding
//              max((ceil(i / s) - 1) s + (k - 1) d + 1 - i, 0) is split with the smaller half on top/left,
//              so the output is ceil(i / s) and a stride-2 layer may pad one more row at the bottom.
// The weight starts as timm initialises EfficientNet: normal(0, sqrt(2 / fan_out)),
// fan_out = R S K / groups; the bias at zero.
#pragma once

#include "layers/module.h"
#include "tensor/backend.h"

namespace effnet {

enum class Padding { Symmetric, Same };

struct Conv2dOptions {
  Conv2dOptions() = default;
  Conv2dOptions(int64_t in, int64_t out, int64_t kernel_size, int64_t stride_size = 1, int64_t group_count = 1)
      : in_channels(in), out_channels(out), kernel(kernel_size), stride(stride_size), groups(group_count) {}

  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = false;
  Padding padding = Padding::Symmetric;
  int64_t explicit_padding = -1;  // Symmetric only; -1 = the formula above
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  Tensor forward(const Tensor& x) override;
  // forward(x * gate) with a per-channel gate [N, C, 1, 1] (squeeze-excite's), as tensor/nn.h's
  // channel_gate_conv2d: the product is not kept for the backward.
  Tensor forward_gated(const Tensor& x, const Tensor& gate);

  const Conv2dOptions& options() const { return options_; }
  // The output size of a spatial dim of `input` (same rule in both directions: the kernel is square).
  int64_t output_size(int64_t input) const;
  Tensor weight, bias;  // bias undefined when options().bias is false

 private:
  Tensor convolve(const Tensor& x, const Tensor& gate);  // gate undefined: no gate

  Conv2dOptions options_;
};

}  // namespace effnet
