#include "layers/conv2d.h"

#include <cmath>

#include "tensor/nn.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

// TensorFlow 'same': total padding of one spatial dim of size `size`.
int64_t same_padding_total(int64_t size, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t out = (size + stride - 1) / stride;
  return std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
}

}  // namespace

Conv2d::Conv2d(const Conv2dOptions& options) : options_(options) {
  const Conv2dOptions& o = options_;
  EFFNET_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.kernel > 0 && o.stride > 0 && o.dilation > 0 &&
                   o.groups > 0,
               "Conv2d: channels, kernel, stride, dilation and groups must be positive (in ", o.in_channels, ", out ",
               o.out_channels, ", kernel ", o.kernel, ", stride ", o.stride, ", dilation ", o.dilation, ", groups ",
               o.groups, ")");
  EFFNET_CHECK(o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0, "Conv2d: groups ", o.groups,
               " must divide both ", o.in_channels, " input and ", o.out_channels, " output channels");
  const double fan_out = static_cast<double>(o.kernel * o.kernel * o.out_channels / o.groups);
  weight = register_parameter("weight", randn({o.out_channels, o.in_channels / o.groups, o.kernel, o.kernel}) *
                                            std::sqrt(2.0 / fan_out));
  if (o.bias) bias = register_parameter("bias", zeros({o.out_channels}));
}

int64_t Conv2d::output_size(int64_t input) const {
  const Conv2dOptions& o = options_;
  if (o.padding == Padding::Same) return (input + o.stride - 1) / o.stride;
  const int64_t pad = o.explicit_padding >= 0 ? o.explicit_padding : ((o.stride - 1) + o.dilation * (o.kernel - 1)) / 2;
  return conv_output_size(input, o.kernel, o.stride, pad, o.dilation);
}

Tensor Conv2d::forward(const Tensor& x) { return convolve(x, Tensor()); }

Tensor Conv2d::forward_gated(const Tensor& x, const Tensor& gate) { return convolve(x, gate); }

Tensor Conv2d::convolve(const Tensor& x, const Tensor& gate) {
  const Conv2dOptions& o = options_;
  EFFNET_CHECK(x.dim() == 4 && x.size(1) == o.in_channels, "Conv2d(", o.in_channels, " -> ", o.out_channels,
               ", kernel ", o.kernel, "): expected an input [N, ", o.in_channels, ", H, W], got ", x.str());
  Conv2dGeometry g;
  g.stride_h = g.stride_w = o.stride;
  g.dilation_h = g.dilation_w = o.dilation;
  g.groups = o.groups;
  // Padding before the gate is the same as after it: padded zeros stay zero.
  auto run = [&](const Tensor& input) {
    return gate.defined() ? channel_gate_conv2d(input, gate, weight, bias, g) : conv2d(input, weight, bias, g);
  };
  if (o.padding == Padding::Symmetric) {
    g.pad_h = g.pad_w = o.explicit_padding >= 0 ? o.explicit_padding : ((o.stride - 1) + o.dilation * (o.kernel - 1)) / 2;
    return run(x);
  }
  const int64_t total_h = same_padding_total(x.size(2), o.kernel, o.stride, o.dilation);
  const int64_t total_w = same_padding_total(x.size(3), o.kernel, o.stride, o.dilation);
  if (total_h % 2 == 0 && total_w % 2 == 0) {  // symmetric after all: cuDNN pads for free
    g.pad_h = total_h / 2;
    g.pad_w = total_w / 2;
    return run(x);
  }
  return run(pad2d(x, total_h / 2, total_h - total_h / 2, total_w / 2, total_w - total_w / 2));
}

}  // namespace effnet
