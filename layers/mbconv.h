// EfficientNet's two blocks, with timm's child names (so their state-dict keys match timm's):
//
// DepthwiseSeparable (stage 0):       conv_dw (k x k, stride, groups = C) -> bn1 -> SiLU -> se
//                                     -> conv_pw (1x1) -> bn2
// InvertedResidual ("MBConv"):        conv_pw (1x1, C -> C e) -> bn1 -> SiLU
//                                     -> conv_dw (k x k, stride, groups = C e) -> bn2 -> SiLU -> se
//                                     -> conv_pwl (1x1, C e -> out) -> bn3
// Both: when stride is 1 and in == out channels, y = drop_path(block(x)) + x.
// SE reduces to round(in x se_ratio) channels; se_ratio 0 leaves it out.
#pragma once

#include <memory>

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/squeeze_excite.h"

namespace effnet {

struct BlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t expand_ratio = 6;  // InvertedResidual only
  double se_ratio = 0.25;
  double drop_path = 0.0;
  Padding padding = Padding::Symmetric;
  double bn_eps = 1e-5;
  double bn_momentum = 0.1;
  bool fused = false;  // fused ops: batch norm + SiLU (BatchNorm2dOptions::fuse_silu), the SE gate with the
                       // projection convolution after it (Conv2d::forward_gated)
};

class DepthwiseSeparable : public Module {
 public:
  explicit DepthwiseSeparable(const BlockOptions& options);
  Tensor forward(const Tensor& x) override;
  bool has_skip() const { return has_skip_; }

  std::shared_ptr<Conv2d> conv_dw, conv_pw;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<SqueezeExcite> se;  // null when se_ratio is 0
  std::shared_ptr<DropPath> drop_path;

 private:
  bool has_skip_, fused_;
};

class InvertedResidual : public Module {
 public:
  explicit InvertedResidual(const BlockOptions& options);
  Tensor forward(const Tensor& x) override;
  bool has_skip() const { return has_skip_; }

  std::shared_ptr<Conv2d> conv_pw, conv_dw, conv_pwl;
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<SqueezeExcite> se;  // null when se_ratio is 0
  std::shared_ptr<DropPath> drop_path;

 private:
  bool has_skip_, fused_;
};

}  // namespace effnet
