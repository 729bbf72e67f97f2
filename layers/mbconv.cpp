#include "layers/mbconv.h"

#include <cmath>

#include "tensor/ops.h"

namespace effnet {

namespace {

std::shared_ptr<Conv2d> conv(const BlockOptions& o, int64_t in, int64_t out, int64_t kernel, int64_t stride,
                             int64_t groups) {
  Conv2dOptions c(in, out, kernel, stride, groups);
  c.padding = o.padding;
  return std::make_shared<Conv2d>(c);
}

std::shared_ptr<BatchNorm2d> bn(const BlockOptions& o, int64_t channels) {
  return std::make_shared<BatchNorm2d>(BatchNorm2dOptions{channels, o.bn_eps, o.bn_momentum, o.fused});
}

void check(const char* block, const BlockOptions& o) {
  EFFNET_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.kernel > 0 && o.stride > 0 && o.expand_ratio > 0 &&
                   o.se_ratio >= 0,
               block, ": invalid options (in ", o.in_channels, ", out ", o.out_channels, ", kernel ", o.kernel,
               ", stride ", o.stride, ", expand ", o.expand_ratio, ", se ", o.se_ratio, ")");
}

std::shared_ptr<SqueezeExcite> squeeze_excite(const BlockOptions& o, int64_t channels) {
  if (o.se_ratio == 0) return nullptr;
  const int64_t reduced = std::max<int64_t>(1, std::llround(static_cast<double>(o.in_channels) * o.se_ratio));
  return std::make_shared<SqueezeExcite>(channels, reduced, o.fused);
}

// Squeeze-excite (when the block has it), then the 1x1 projection. Fused, the gate goes into the projection
// with x, and the gated activation is not kept for the backward.
Tensor excite_and_project(const std::shared_ptr<SqueezeExcite>& se, Conv2d& project, const Tensor& x, bool fused) {
  if (!se) return project.forward(x);
  return fused ? project.forward_gated(x, se->gate(x)) : project.forward(se->forward(x));
}

}  // namespace

DepthwiseSeparable::DepthwiseSeparable(const BlockOptions& o)
    : has_skip_(o.stride == 1 && o.in_channels == o.out_channels), fused_(o.fused) {
  check("DepthwiseSeparable", o);
  conv_dw = register_module("conv_dw", conv(o, o.in_channels, o.in_channels, o.kernel, o.stride, o.in_channels));
  bn1 = register_module("bn1", bn(o, o.in_channels));
  se = squeeze_excite(o, o.in_channels);
  if (se) register_module("se", se);
  conv_pw = register_module("conv_pw", conv(o, o.in_channels, o.out_channels, 1, 1, 1));
  bn2 = register_module("bn2", bn(o, o.out_channels));
  drop_path = std::make_shared<DropPath>(o.drop_path);
  register_module("drop_path", drop_path);
}

Tensor DepthwiseSeparable::forward(const Tensor& x) {
  Tensor y = bn1->forward_silu(conv_dw->forward(x));
  y = bn2->forward(excite_and_project(se, *conv_pw, y, fused_));
  return has_skip_ ? drop_path->forward_add(y, x) : y;
}

InvertedResidual::InvertedResidual(const BlockOptions& o)
    : has_skip_(o.stride == 1 && o.in_channels == o.out_channels), fused_(o.fused) {
  check("InvertedResidual", o);
  const int64_t mid = o.in_channels * o.expand_ratio;
  conv_pw = register_module("conv_pw", conv(o, o.in_channels, mid, 1, 1, 1));
  bn1 = register_module("bn1", bn(o, mid));
  conv_dw = register_module("conv_dw", conv(o, mid, mid, o.kernel, o.stride, mid));
  bn2 = register_module("bn2", bn(o, mid));
  se = squeeze_excite(o, mid);
  if (se) register_module("se", se);
  conv_pwl = register_module("conv_pwl", conv(o, mid, o.out_channels, 1, 1, 1));
  bn3 = register_module("bn3", bn(o, o.out_channels));
  drop_path = std::make_shared<DropPath>(o.drop_path);
  register_module("drop_path", drop_path);
}

Tensor InvertedResidual::forward(const Tensor& x) {
  Tensor y = bn1->forward_silu(conv_pw->forward(x));
  y = bn2->forward_silu(conv_dw->forward(y));
  y = bn3->forward(excite_and_project(se, *conv_pwl, y, fused_));
  return has_skip_ ? drop_path->forward_add(y, x) : y;
}

}  // namespace effnet
