// EfficientNet B0-B7 (Tan & Le, 2019) as timm builds it, so that timm's state dicts load without renaming.
//
// The B0 stage table (block type, repeats, kernel, stride, expansion, output channels; SE 0.25 everywhere):
//   stage 0  ds  r1 k3 s1 e1 c16        stage 4  ir  r3 k5 s1 e6 c112
//   stage 1  ir  r2 k3 s2 e6 c24        stage 5  ir  r4 k5 s2 e6 c192
//   stage 2  ir  r2 k5 s2 e6 c40        stage 6  ir  r1 k3 s1 e6 c320
//   stage 3  ir  r3 k3 s2 e6 c80
// Compound scaling by (width w, depth d): channels c -> make_divisible(c w) (to a multiple of 8, never
// below 90 % of c w), repeats r -> ceil(r d). Stem: 3x3 stride 2 conv to make_divisible(32 w) channels ->
// bn1 -> SiLU; stages; head: 1x1 conv_head to make_divisible(1280 w) -> bn2 -> SiLU -> global average pool
// -> dropout -> classifier. Drop path grows linearly from 0 at the first block to rate (n - 1) / n at the
// last of the n blocks.
//
// The multi head (ClassifierHead::Multi, 18 classes only) replaces `classifier` by three heads on the same
// pooled, dropped-out features: `classifier_mask` (3), `classifier_gender` (2) and `classifier_age` (3),
// timm-initialised like the classifier. forward() then returns the 18-class log-probabilities
// log p_mask + log p_gender + log p_age (losses/multi_head.h), whose softmax is the product of the heads'
// probabilities, so the model is used like a single-head one; forward_heads() gives the heads' logits for
// the multi-head loss.
//
//   variant   (w, d)      resolution      variant   (w, d)      resolution
//   b0        (1.0, 1.0)  224             b4        (1.4, 1.8)  380
//   b1        (1.0, 1.1)  240             b5        (1.6, 2.2)  456
//   b2        (1.1, 1.2)  260             b6        (1.8, 2.6)  528
//   b3        (1.2, 1.4)  300             b7        (2.0, 3.1)  600
// "efficientnet_bN" pads symmetrically with BN eps 1e-5 (timm's own training); "tf_efficientnet_bN" pads
// like TensorFlow ('same') with BN eps 1e-3 (the ported Google weights).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/linear.h"
#include "layers/mbconv.h"
#include "losses/multi_head.h"

namespace effnet {

enum class ClassifierHead { Single, Multi };

struct EfficientNetOptions {
  double width = 1.0;   // channel multiplier
  double depth = 1.0;   // repeat multiplier
  int64_t resolution = 224;  // the variant's default input size (square)
  int64_t num_classes = 1000;
  double dropout = 0.0;    // before the classifier (timm's default 0; the recipe uses 0.7)
  double drop_path = 0.0;  // stochastic depth rate of the last block
  Padding padding = Padding::Symmetric;
  double bn_eps = 1e-5;
  double bn_momentum = 0.1;
  ClassifierHead head = ClassifierHead::Single;
  // The images go channels-last (NHWC) at the stem, so every convolution, batch norm and activation after
  // it runs in that layout (cuDNN's fast 16-bit and depthwise kernels want it); the parameters and the
  // state dict are unchanged.
  bool channels_last = false;
  // Fused kernels where effnet has them: each batch norm + SiLU pair is one op (tensor/nn.h's
  // batch_norm_silu), which keeps one activation less for the backward, and the squeeze-excite gate's
  // backward is one pass (channel_gate). Results equal the unfused model's to rounding (on CUDA, float32
  // batch norm then runs in effnet's kernels rather than cuDNN's).
  bool fused = false;
};

// The options of a named variant: "efficientnet_b0" ... "efficientnet_b7", "tf_efficientnet_b0" ... "_b7".
// Throws naming the accepted names for anything else.
EfficientNetOptions efficientnet_options(const std::string& name);
std::vector<std::string> efficientnet_names();

// timm's channel rounding: the multiple of `divisor` nearest to v, but not below 90 % of v.
int64_t make_divisible(double v, int64_t divisor = 8);

// One block of the scaled network.
struct BlockSpec {
  bool depthwise_separable;  // stage 0's DS block; otherwise an inverted residual
  BlockOptions options;
};

// The scaled stage table: stages[s] lists its blocks, with in/out channels and drop-path rates filled in.
std::vector<std::vector<BlockSpec>> efficientnet_stages(const EfficientNetOptions& options);

class EfficientNet : public Module {
 public:
  explicit EfficientNet(const EfficientNetOptions& options);
  // [N, 3, H, W] -> logits [N, num_classes] (single head) or 18-class log-probabilities (multi head)
  Tensor forward(const Tensor& x) override;
  Tensor forward_features(const Tensor& x);       // -> [N, num_features, H / 32, W / 32] after bn2 + SiLU
  Tensor forward_head(const Tensor& features);    // pool -> dropout -> classifier (or the joint of the heads)
  MaskHeadLogits forward_heads(const Tensor& x);  // the multi head's three logits; an error for a single head
  // The linear layers on the pooled features: {classifier}, or the mask, gender and age heads.
  std::vector<std::shared_ptr<Linear>> classifiers() const;

  const EfficientNetOptions& options() const { return options_; }
  int64_t num_features() const { return num_features_; }

  std::shared_ptr<Conv2d> conv_stem, conv_head;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Sequential> blocks;  // blocks[s][i]: Sequential of Sequentials, as timm's names need
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Linear> classifier;  // single head only
  std::shared_ptr<Linear> classifier_mask, classifier_gender, classifier_age;  // multi head only

 private:
  Tensor pooled(const Tensor& features);  // global average pool -> dropout
  MaskHeadLogits heads_of(const Tensor& pooled);

  EfficientNetOptions options_;
  int64_t num_features_;
};

}  // namespace effnet
