// Layer behaviour beyond gradients: names, modes, running statistics, padding arithmetic, dropout
// statistics, devices and dtypes, and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "autograd/grad_mode.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/linear.h"
#include "layers/mbconv.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

using test::error_of;

std::vector<std::string> names(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> out;
  for (const auto& [name, t] : named) out.push_back(name);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

BlockOptions mbconv_options() {
  BlockOptions o;
  o.in_channels = 8;
  o.out_channels = 8;
  o.kernel = 3;
  o.expand_ratio = 6;
  return o;
}

TEST(Modules, InvertedResidualHasTimmNames) {
  InvertedResidual block(mbconv_options());
  const std::vector<std::string> p = names(block.named_parameters()), b = names(block.named_buffers());
  for (const char* n : {"conv_pw.weight", "bn1.weight", "bn1.bias", "conv_dw.weight", "bn2.weight",
                        "se.conv_reduce.weight", "se.conv_reduce.bias", "se.conv_expand.weight",
                        "se.conv_expand.bias", "conv_pwl.weight", "bn3.weight", "bn3.bias"}) {
    EXPECT_TRUE(contains(p, n)) << n;
  }
  EXPECT_EQ(p.size(), 13u);
  for (const char* n : {"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "bn3.running_var"}) {
    EXPECT_TRUE(contains(b, n)) << n;
  }
  // in 8, expand 6 -> 48, SE reduces to round(8 * 0.25) = 2
  EXPECT_EQ(block.se->conv_reduce->weight.shape(), (Shape{2, 48, 1, 1}));
  EXPECT_EQ(block.conv_dw->weight.shape(), (Shape{48, 1, 3, 3}));
  EXPECT_TRUE(block.has_skip());
  EXPECT_EQ(block.parameter_count(), 8 * 48 + 2 * 48 + 48 * 9 + 2 * 48 + (48 * 2 + 2) + (2 * 48 + 48) + 48 * 8 + 2 * 8);
}

TEST(Modules, DepthwiseSeparableHasTimmNames) {
  BlockOptions o = mbconv_options();
  o.out_channels = 16;
  DepthwiseSeparable block(o);
  const std::vector<std::string> p = names(block.named_parameters());
  for (const char* n : {"conv_dw.weight", "bn1.weight", "se.conv_reduce.weight", "se.conv_expand.bias",
                        "conv_pw.weight", "bn2.bias"}) {
    EXPECT_TRUE(contains(p, n)) << n;
  }
  EXPECT_FALSE(block.has_skip());
}

TEST(Modules, SequentialNamesChildrenByIndex) {
  Sequential seq;
  seq.add(std::make_shared<Linear>(3, 4));
  seq.add(std::make_shared<SiLU>());
  seq.add(std::make_shared<Linear>(4, 2));
  EXPECT_EQ(names(seq.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(seq.forward(randn({5, 3})).shape(), (Shape{5, 2}));
}

TEST(Modules, TrainAndEvalReachEveryDescendant) {
  InvertedResidual block(mbconv_options());
  block.eval();
  EXPECT_FALSE(block.bn2->is_training());
  EXPECT_FALSE(block.drop_path->is_training());
  block.train();
  EXPECT_TRUE(block.se->conv_reduce->is_training());
}

TEST(Modules, BatchNormUpdatesRunningStatisticsLikePyTorch) {
  BatchNorm2d bn(BatchNorm2dOptions{2, 1e-5, 0.1});
  // Channel 0 holds 1..8, channel 1 holds 2 x (1..8): mean 4.5 and 9, biased var 5.25 and 21.
  std::vector<double> v;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int k = 1; k <= 4; ++k) v.push_back((c + 1) * (n * 4 + k));
  const Tensor x = from_vector(v, {2, 2, 2, 2});
  const Tensor y = bn.forward(x);
  const std::vector<double> rm = bn.running_mean.to_vector(), rv = bn.running_var.to_vector();
  EXPECT_NEAR(rm[0], 0.45, 1e-6);
  EXPECT_NEAR(rm[1], 0.9, 1e-6);
  EXPECT_NEAR(rv[0], 0.9 + 0.1 * 5.25 * 8 / 7, 1e-6);  // unbiased variance in the running average
  EXPECT_NEAR(rv[1], 0.9 + 0.1 * 21.0 * 8 / 7, 1e-5);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1);
  // Normalized with the biased variance: the first value of channel 0 is (1 - 4.5) / sqrt(5.25 + eps).
  EXPECT_NEAR(y.to_vector()[0], -3.5 / std::sqrt(5.25 + 1e-5), 1e-5);
  bn.eval();
  bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1) << "eval mode leaves the statistics alone";
  EXPECT_NEAR(bn.running_mean.to_vector()[0], 0.45, 1e-6);
}

TEST(Modules, SymmetricPaddingKeepsOrHalvesTheSize) {
  for (int64_t k : {1, 3, 5}) {
    Conv2dOptions o;
    o.in_channels = 2;
    o.out_channels = 2;
    o.kernel = k;
    o.stride = 2;
    Conv2d conv(o);
    EXPECT_EQ(conv.forward(randn({1, 2, 16, 16})).shape(), (Shape{1, 2, 8, 8})) << "kernel " << k;
  }
}

TEST(Modules, SamePaddingIsAsymmetricLikeTensorFlow) {
  // 3x3 stride 2 on 6x6: output ceil(6/2) = 3, total padding (3-1)*2 + 3 - 6 = 1: none on top, one below.
  Conv2dOptions o;
  o.in_channels = 1;
  o.out_channels = 1;
  o.kernel = 3;
  o.stride = 2;
  o.padding = Padding::Same;
  Conv2d conv(o);
  const Tensor x = randn({1, 1, 6, 6});
  const Tensor y = conv.forward(x);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  Conv2dGeometry g;
  g.stride_h = g.stride_w = 2;
  const Tensor expected = conv2d(pad2d(x, 0, 1, 0, 1), conv.weight, Tensor(), g);
  const std::vector<double> a = y.to_vector(), b = expected.to_vector();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
  // Odd input: 7 -> ceil(7/2) = 4, total (4-1)*2 + 3 - 7 = 2, symmetric.
  EXPECT_EQ(conv.forward(randn({1, 1, 7, 7})).shape(), (Shape{1, 1, 4, 4}));
}

TEST(Modules, ConvolutionValuesByHand) {
  // 2x2 input, 2x2 kernel of ones with padding 0: the sum of the input.
  const Tensor x = from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  const Tensor w = ones({1, 1, 2, 2});
  EXPECT_EQ(conv2d(x, w, from_vector({10}, {1}), Conv2dGeometry{}).item(), 20.0);
  // Depthwise: each channel with its own kernel.
  const Tensor x2 = from_vector({1, 1, 1, 1, 2, 2, 2, 2}, {1, 2, 2, 2});
  Conv2dGeometry g;
  g.groups = 2;
  EXPECT_EQ(conv2d(x2, from_vector({1, 1, 1, 1, 3, 3, 3, 3}, {2, 1, 2, 2}), Tensor(), g).to_vector(),
            (std::vector<double>{4, 24}));
}

TEST(Modules, DropoutKeepsAboutKeepAndScales) {
  Dropout dropout(0.7);
  manual_seed(1);
  const Tensor y = dropout.forward(ones({100000}));
  int64_t kept = 0;
  for (double v : y.to_vector()) {
    if (v != 0) {
      ++kept;
      EXPECT_NEAR(v, 1.0 / 0.3, 1e-5);
    }
  }
  // Binomial(100000, 0.3): standard deviation 145; 5 of them is 725.
  EXPECT_NEAR(static_cast<double>(kept), 30000.0, 725.0);
  dropout.eval();
  EXPECT_EQ(dropout.forward(ones({10})).to_vector(), std::vector<double>(10, 1.0));
  // Same seed, same mask.
  dropout.train();
  manual_seed(1);
  EXPECT_EQ(dropout.forward(ones({100000})).to_vector(), y.to_vector());
}

TEST(Modules, DropPathDropsWholeSamples) {
  DropPath drop_path(0.5);
  manual_seed(2);
  const Tensor y = drop_path.forward(ones({64, 3, 2, 2}));
  const std::vector<double> v = y.to_vector();
  int dropped = 0;
  for (int n = 0; n < 64; ++n) {
    const std::set<double> values(v.begin() + n * 12, v.begin() + (n + 1) * 12);
    ASSERT_EQ(values.size(), 1u) << "sample " << n << " was partly dropped";
    const double value = *values.begin();
    EXPECT_TRUE(value == 0.0 || value == 2.0) << value;
    dropped += value == 0.0;
  }
  EXPECT_GT(dropped, 10);
  EXPECT_LT(dropped, 54);
}

TEST(Modules, ToDtypeAndDeviceKeepTheSameHandles) {
  InvertedResidual block(mbconv_options());
  const Tensor weight = block.conv_pw->weight;  // a handle held outside the module
  block.to(kFloat64);
  EXPECT_EQ(weight.dtype(), kFloat64);
  EXPECT_EQ(block.named_parameters()[0].second.dtype(), kFloat64);
  EXPECT_EQ(block.bn1->num_batches_tracked.dtype(), kInt64) << "integer buffers keep their dtype";
  EXPECT_TRUE(weight.requires_grad());
  EXPECT_TRUE(weight.is_leaf());
  const Tensor y = block.forward(randn({2, 8, 5, 5}, kFloat64));
  y.sum().backward();
  EXPECT_TRUE(weight.grad().defined());
  block.zero_grad();
  EXPECT_FALSE(weight.grad().defined());
}

TEST(ModulesCuda, ToCudaMovesEveryParameterAndBuffer) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  InvertedResidual block(mbconv_options());
  block.to(Device::cuda(0));
  for (const auto& [name, t] : block.named_parameters()) EXPECT_TRUE(t.is_cuda()) << name;
  for (const auto& [name, t] : block.named_buffers()) EXPECT_TRUE(t.is_cuda()) << name;
  const Tensor y = block.forward(randn({2, 8, 5, 5}).cuda());
  EXPECT_TRUE(y.is_cuda());
  EXPECT_EQ(block.bn1->num_batches_tracked.item(), 1);
}

TEST(ModuleErrors, NameTheLayerAndTheShapes) {
  Conv2dOptions o;
  o.in_channels = 3;
  o.out_channels = 8;
  o.kernel = 3;
  Conv2d conv(o);
  const std::string conv_error = error_of([&] { conv.forward(randn({1, 4, 8, 8})); });
  EXPECT_NE(conv_error.find("Conv2d(3 -> 8"), std::string::npos) << conv_error;
  EXPECT_NE(conv_error.find("[1, 4, 8, 8]"), std::string::npos) << conv_error;

  const std::string raw = error_of([] { conv2d(randn({1, 4, 8, 8}), randn({8, 3, 3, 3}), Tensor(), {}); });
  EXPECT_NE(raw.find("expects 3 input channels"), std::string::npos) << raw;
  EXPECT_NE(raw.find("has 4"), std::string::npos) << raw;

  const std::string small = error_of([] { conv2d(randn({1, 3, 2, 2}), randn({8, 3, 5, 5}), Tensor(), {}); });
  EXPECT_NE(small.find("smaller than"), std::string::npos) << small;

  Conv2dOptions grouped = o;
  grouped.groups = 2;
  EXPECT_NE(error_of([&] { Conv2d bad(grouped); }).find("groups 2"), std::string::npos);

  BatchNorm2d bn(BatchNorm2dOptions{4});
  EXPECT_NE(error_of([&] { bn.forward(randn({2, 3, 4, 4})); }).find("BatchNorm2d(4)"), std::string::npos);
  EXPECT_NE(error_of([&] { bn.forward(randn({1, 4, 1, 1})); }).find("more than one value per channel"),
            std::string::npos);

  Linear linear(16, 4);
  EXPECT_NE(error_of([&] { linear.forward(randn({2, 15})); }).find("[2, 15]"), std::string::npos);
  EXPECT_NE(error_of([] { Dropout d(1.0); }).find("[0, 1)"), std::string::npos);
  EXPECT_NE(error_of([] { conv2d(randn({1, 3, 8, 8}), randn({8, 3, 3, 3}, kFloat64), Tensor(), {}); })
                .find("different dtypes"),
            std::string::npos);
}

}  // namespace
}  // namespace effnet
