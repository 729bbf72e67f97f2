#include "models/efficientnet.h"

#include <cmath>

#include "data/dataset.h"
#include "tensor/ops.h"

namespace effnet {

namespace {

struct StageDef {
  bool depthwise_separable;
  int64_t repeats, kernel, stride, expand, channels;
};

constexpr StageDef kB0Stages[] = {
    {true, 1, 3, 1, 1, 16},   {false, 2, 3, 2, 6, 24},  {false, 2, 5, 2, 6, 40},  {false, 3, 3, 2, 6, 80},
    {false, 3, 5, 1, 6, 112}, {false, 4, 5, 2, 6, 192}, {false, 1, 3, 1, 6, 320},
};
constexpr double kSeRatio = 0.25;

struct Variant {
  double width, depth;
  int64_t resolution;
};

constexpr Variant kVariants[] = {{1.0, 1.0, 224}, {1.0, 1.1, 240}, {1.1, 1.2, 260}, {1.2, 1.4, 300},
                                 {1.4, 1.8, 380}, {1.6, 2.2, 456}, {1.8, 2.6, 528}, {2.0, 3.1, 600}};

}  // namespace

std::vector<std::string> efficientnet_names() {
  std::vector<std::string> names;
  for (const char* prefix : {"efficientnet_b", "tf_efficientnet_b"}) {
    for (int b = 0; b < 8; ++b) names.push_back(prefix + std::to_string(b));
  }
  return names;
}

EfficientNetOptions efficientnet_options(const std::string& name) {
  const bool tf = name.rfind("tf_", 0) == 0;
  const std::string base = tf ? name.substr(3) : name;
  const bool known = base.size() == 15 && base.rfind("efficientnet_b", 0) == 0 && base[14] >= '0' && base[14] <= '7';
  if (!known) {
    std::string accepted;
    for (const std::string& n : efficientnet_names()) accepted += (accepted.empty() ? "" : ", ") + n;
    EFFNET_FAIL("unknown model '", name, "': expected one of ", accepted);
  }
  const Variant& v = kVariants[base[14] - '0'];
  EfficientNetOptions o;
  o.width = v.width;
  o.depth = v.depth;
  o.resolution = v.resolution;
  if (tf) {
    o.padding = Padding::Same;
    o.bn_eps = 1e-3;
  }
  return o;
}

int64_t make_divisible(double v, int64_t divisor) {
  int64_t rounded = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;  // never round down by more than 10 %
  return rounded;
}

std::vector<std::vector<BlockSpec>> efficientnet_stages(const EfficientNetOptions& o) {
  std::vector<std::vector<BlockSpec>> stages;
  int64_t in = make_divisible(32 * o.width);
  int64_t total = 0;
  for (const StageDef& s : kB0Stages) total += static_cast<int64_t>(std::ceil(static_cast<double>(s.repeats) * o.depth));
  int64_t index = 0;
  for (const StageDef& s : kB0Stages) {
    const int64_t repeats = static_cast<int64_t>(std::ceil(static_cast<double>(s.repeats) * o.depth));
    const int64_t out = make_divisible(static_cast<double>(s.channels) * o.width);
    std::vector<BlockSpec> stage;
    for (int64_t r = 0; r < repeats; ++r, ++index) {
      BlockSpec b;
      b.depthwise_separable = s.depthwise_separable;
      b.options.in_channels = in;
      b.options.out_channels = out;
      b.options.kernel = s.kernel;
      b.options.stride = r == 0 ? s.stride : 1;
      b.options.expand_ratio = s.expand;
      b.options.se_ratio = kSeRatio;
      b.options.drop_path = o.drop_path * static_cast<double>(index) / static_cast<double>(total);
      b.options.padding = o.padding;
      b.options.bn_eps = o.bn_eps;
      b.options.bn_momentum = o.bn_momentum;
      b.options.fused = o.fused;
      stage.push_back(b);
      in = out;
    }
    stages.push_back(stage);
  }
  return stages;
}

EfficientNet::EfficientNet(const EfficientNetOptions& o) : options_(o) {
  EFFNET_CHECK(o.width > 0 && o.depth > 0 && o.num_classes > 0, "EfficientNet: width, depth and num_classes must be "
               "positive, got ", o.width, ", ", o.depth, ", ", o.num_classes);
  const int64_t stem = make_divisible(32 * o.width);
  Conv2dOptions stem_conv(3, stem, 3, 2);
  stem_conv.padding = o.padding;
  conv_stem = register_module("conv_stem", std::make_shared<Conv2d>(stem_conv));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(BatchNorm2dOptions{stem, o.bn_eps, o.bn_momentum, o.fused}));

  blocks = register_module("blocks", std::make_shared<Sequential>());
  int64_t last = stem;
  for (const std::vector<BlockSpec>& specs : efficientnet_stages(o)) {
    auto stage = std::make_shared<Sequential>();
    for (const BlockSpec& b : specs) {
      if (b.depthwise_separable) stage->add(std::make_shared<DepthwiseSeparable>(b.options));
      else stage->add(std::make_shared<InvertedResidual>(b.options));
      last = b.options.out_channels;
    }
    blocks->add(stage);
  }

  num_features_ = make_divisible(1280 * o.width);
  Conv2dOptions head_conv(last, num_features_, 1);
  head_conv.padding = o.padding;
  conv_head = register_module("conv_head", std::make_shared<Conv2d>(head_conv));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(BatchNorm2dOptions{num_features_, o.bn_eps,
                                                                                 o.bn_momentum, o.fused}));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  if (o.head == ClassifierHead::Single) {
    classifier = register_module("classifier", std::make_shared<Linear>(num_features_, o.num_classes));
    return;
  }
  EFFNET_CHECK(o.num_classes == data::kMaskClasses, "EfficientNet: the multi head predicts the 18 mask classes "
               "(mask 3 x gender 2 x age 3), but num_classes is ", o.num_classes);
  classifier_mask = register_module("classifier_mask", std::make_shared<Linear>(num_features_, kMaskHeadClasses[0]));
  classifier_gender =
      register_module("classifier_gender", std::make_shared<Linear>(num_features_, kMaskHeadClasses[1]));
  classifier_age = register_module("classifier_age", std::make_shared<Linear>(num_features_, kMaskHeadClasses[2]));
}

Tensor EfficientNet::forward_features(const Tensor& x) {
  EFFNET_CHECK(x.dim() == 4 && x.size(1) == 3, "EfficientNet: expected images [N, 3, H, W], got ", x.str());
  const Tensor input = options_.channels_last ? x.contiguous(MemoryFormat::ChannelsLast) : x;
  Tensor y = bn1->forward_silu(conv_stem->forward(input));
  y = blocks->forward(y);
  return bn2->forward_silu(conv_head->forward(y));
}

// Under mixed precision (tensor/autocast.h) the features are 16-bit; the pooled vector goes back to the
// parameters' dtype here, so the classifier, the loss and the metrics run in float32 as without it.
Tensor EfficientNet::pooled(const Tensor& features) {
  return dropout->forward(mean(features, {2, 3})).to(conv_head->weight.dtype());
}

MaskHeadLogits EfficientNet::heads_of(const Tensor& pooled) {
  return {classifier_mask->forward(pooled), classifier_gender->forward(pooled), classifier_age->forward(pooled)};
}

Tensor EfficientNet::forward_head(const Tensor& features) {
  if (options_.head == ClassifierHead::Single) return classifier->forward(pooled(features));
  return mask_joint_log_probs(heads_of(pooled(features)));
}

MaskHeadLogits EfficientNet::forward_heads(const Tensor& x) {
  EFFNET_CHECK(options_.head == ClassifierHead::Multi, "EfficientNet::forward_heads: this model has a single "
               "classifier (build it with head = multi for the mask, gender and age heads)");
  return heads_of(pooled(forward_features(x)));
}

std::vector<std::shared_ptr<Linear>> EfficientNet::classifiers() const {
  if (options_.head == ClassifierHead::Single) return {classifier};
  return {classifier_mask, classifier_gender, classifier_age};
}

Tensor EfficientNet::forward(const Tensor& x) { return forward_head(forward_features(x)); }

}  // namespace effnet
