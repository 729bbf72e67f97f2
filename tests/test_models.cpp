// EfficientNet: the scaled architecture, parameter counts, the summary, and a CPU training step.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "autograd/grad_mode.h"
#include "models/efficientnet.h"
#include "models/summary.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

EfficientNetOptions named(const std::string& name, int64_t classes = 1000) {
  EfficientNetOptions o = efficientnet_options(name);
  o.num_classes = classes;
  return o;
}

TEST(EfficientNet, ParameterCountsEqualThePublishedOnes) {
  const int64_t published[] = {5288548, 7794184, 9109994, 12233232, 19341616, 30389784, 43040704, 66347960};
  for (int b = 0; b < 8; ++b) {
    const std::string name = "efficientnet_b" + std::to_string(b);
    EXPECT_EQ(EfficientNet(named(name)).parameter_count(), published[b]) << name;
  }
  // The TensorFlow-padded variants differ only in padding and eps.
  EXPECT_EQ(EfficientNet(named("tf_efficientnet_b4")).parameter_count(), published[4]);
}

TEST(EfficientNet, ChannelRoundingAndDepthScalingAreTimms) {
  EXPECT_EQ(make_divisible(32 * 1.4), 48);
  EXPECT_EQ(make_divisible(1280 * 1.4), 1792);
  EXPECT_EQ(make_divisible(24 * 1.1), 24);   // 26.4 -> 24 (within 10 %)
  EXPECT_EQ(make_divisible(16 * 1.8), 32);   // 28.8 -> 32 (nearest multiple of 8)
  EXPECT_EQ(make_divisible(3.0), 8);         // never below the divisor
  const auto stages = efficientnet_stages(named("efficientnet_b4"));
  std::vector<size_t> repeats;
  for (const auto& s : stages) repeats.push_back(s.size());
  EXPECT_EQ(repeats, (std::vector<size_t>{2, 4, 4, 6, 6, 8, 2}));  // ceil(r * 1.8)
  EXPECT_EQ(stages[6].back().options.out_channels, 448);
  EXPECT_EQ(stages[1][0].options.stride, 2);
  EXPECT_EQ(stages[1][1].options.stride, 1);
}

TEST(EfficientNet, DropPathGrowsLinearlyOverTheBlocks) {
  EfficientNetOptions o = named("efficientnet_b0");
  o.drop_path = 0.2;
  std::vector<double> rates;
  for (const auto& stage : efficientnet_stages(o))
    for (const auto& b : stage) rates.push_back(b.options.drop_path);
  ASSERT_EQ(rates.size(), 16u);
  EXPECT_EQ(rates.front(), 0.0);
  EXPECT_DOUBLE_EQ(rates.back(), 0.2 * 15 / 16);
  EXPECT_DOUBLE_EQ(rates[5], 0.2 * 5 / 16);
}

TEST(EfficientNet, StateDictNamesAreTimms) {
  EfficientNet model(named("efficientnet_b0", 18));
  std::vector<std::string> names;
  for (const auto& [name, t] : model.named_parameters()) names.push_back(name);
  for (const auto& [name, t] : model.named_buffers()) names.push_back(name);
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  for (const char* n : {"conv_stem.weight", "bn1.weight", "bn1.running_var", "bn1.num_batches_tracked",
                        "blocks.0.0.conv_dw.weight", "blocks.0.0.se.conv_reduce.bias", "blocks.0.0.conv_pw.weight",
                        "blocks.0.0.bn2.bias", "blocks.1.0.conv_pw.weight", "blocks.1.1.conv_pwl.weight",
                        "blocks.6.0.bn3.running_mean", "conv_head.weight", "bn2.bias", "classifier.weight",
                        "classifier.bias"}) {
    EXPECT_TRUE(has(n)) << n;
  }
  EXPECT_FALSE(has("dropout.p"));
  EXPECT_EQ(model.classifier->weight.shape(), (Shape{18, 1280}));
  // timm's efficientnet_b0 state dict holds 360 tensors: 213 parameters and 49 batch norms x 3 buffers.
  EXPECT_EQ(model.named_parameters().size(), 213u);
  EXPECT_EQ(model.named_buffers().size(), 147u);
}

TEST(EfficientNet, SummaryOfB4) {
  EfficientNet model(named("efficientnet_b4"));
  const ModelSummary s = summarize(model, "efficientnet_b4", 380, 380);
  EXPECT_EQ(s.parameters, 19341616);
  ASSERT_EQ(s.rows.size(), 10u);
  EXPECT_EQ(s.rows[0].output, (Shape{48, 190, 190}));
  EXPECT_EQ(s.rows[1].output, (Shape{24, 190, 190}));
  EXPECT_EQ(s.rows[7].output, (Shape{448, 12, 12}));
  EXPECT_EQ(s.rows[8].output, (Shape{1792, 12, 12}));
  // The published figure is about 4.4 G multiply-adds at 380x380.
  EXPECT_NEAR(static_cast<double>(s.multiply_adds) / 1e9, 4.4, 0.2);
  const std::string table = s.table();
  EXPECT_NE(table.find("19,341,616"), std::string::npos) << table;
  EXPECT_NE(table.find("stage 6"), std::string::npos) << table;
}

TEST(EfficientNet, SummaryOfB0MatchesThePaper) {
  EfficientNet model(named("efficientnet_b0"));
  const ModelSummary s = summarize(model, "efficientnet_b0", 224, 224);
  EXPECT_NEAR(static_cast<double>(s.multiply_adds) / 1e9, 0.39, 0.02);
}

TEST(EfficientNet, TensorFlowPaddingGivesCeilSizes) {
  EfficientNetOptions o = named("tf_efficientnet_b0", 10);
  EfficientNet model(o);
  const ModelSummary s = summarize(model, "tf_efficientnet_b0", 65, 65);
  EXPECT_EQ(s.rows[0].output, (Shape{32, 33, 33}));  // ceil(65 / 2)
  EXPECT_EQ(s.rows[7].output, (Shape{320, 3, 3}));   // 65 -> 33 -> 17 -> 9 -> 5 -> 3
  const Tensor y = model.forward_features(randn({1, 3, 65, 65}));
  EXPECT_EQ(y.shape(), (Shape{1, 1280, 3, 3}));
}

TEST(EfficientNet, B0TrainsAStepOnTheCpu) {
  // Forward and backward of efficientnet_b0 at 64x64 with batch 4, then one SGD step lowers the loss.
  manual_seed(0);
  EfficientNet model(named("efficientnet_b0", 18));
  const Tensor x = randn({4, 3, 64, 64});
  const Tensor loss = mean(pow(model.forward(x), 2.0));
  EXPECT_TRUE(std::isfinite(loss.item()));
  loss.backward();
  for (const auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    ASSERT_EQ(p.grad().shape(), p.shape()) << name;
  }
  {
    autograd::NoGradGuard no_grad;
    for (const Tensor& p : model.parameters()) p.detach().add_(p.grad(), -0.05);
  }
  model.zero_grad();
  EXPECT_LT(mean(pow(model.forward(x), 2.0)).item(), loss.item());
}

TEST(EfficientNet, UnknownNamesListTheAcceptedOnes) {
  try {
    efficientnet_options("efficientnet_b9");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tf_efficientnet_b7"), std::string::npos) << e.what();
  }
}

TEST(EfficientNetCuda, B0StepMatchesTheCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  manual_seed(1);
  EfficientNet on_cpu(named("efficientnet_b0", 18));
  manual_seed(1);
  EfficientNet on_gpu(named("efficientnet_b0", 18));
  on_gpu.to(Device::cuda(0));
  const Tensor x = randn({2, 3, 64, 64});
  const Tensor y_cpu = on_cpu.forward(x), y_gpu = on_gpu.forward(x.cuda());
  const std::vector<double> a = y_cpu.to_vector(), b = y_gpu.to_vector();
  double scale = 0;
  for (double v : a) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], 1e-4 * scale + 1e-4 * std::abs(a[i])) << i;
  sum(y_cpu).backward();
  sum(y_gpu).backward();
  // A batch norm's bias whose output reaches another batch norm in training mode has a gradient that is
  // zero in exact arithmetic (the next normalization cancels a shift): both devices return rounding noise,
  // so it is compared with a floor of 1e-5 of its weight's gradient (see test_timm_parity.cpp).
  const auto pc = on_cpu.named_parameters(), pg = on_gpu.named_parameters();
  auto largest = [](const std::vector<double>& v) {
    double m = 0;
    for (double e : v) m = std::max(m, std::abs(e));
    return m;
  };
  std::map<std::string, double> grad_scale;
  for (const auto& [name, p] : pc) grad_scale[name] = largest(p.grad().to_vector());
  for (size_t k = 0; k < pc.size(); k += 5) {
    const std::string& name = pc[k].first;
    const std::vector<double> gc = pc[k].second.grad().to_vector(), gg = pg[k].second.grad().to_vector();
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const std::string sibling = is_bias ? name.substr(0, name.size() - 5) + ".weight" : "";
    const double floor = is_bias && grad_scale.count(sibling) ? 1e-5 * grad_scale[sibling] : 0.0;
    for (size_t i = 0; i < gc.size(); i += 7) {
      EXPECT_NEAR(gg[i], gc[i], 1e-3 * grad_scale[name] + 1e-3 * std::abs(gc[i]) + floor) << name << " [" << i << "]";
    }
  }
}

}  // namespace
}  // namespace effnet
