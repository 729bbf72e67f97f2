// Every layer as (1) a float64 finite-difference check of the gradients of its input and of every
// parameter, in train and eval mode, on the CPU and on CUDA, and (2) an fp32 CPU<->CUDA parity check of the
// forward result, the input gradient, every parameter gradient and the updated running statistics, at
// shapes EfficientNet-B4 really uses.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "autograd/gradcheck.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/linear.h"
#include "layers/mbconv.h"
#include "layers/squeeze_excite.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/test_util.h"

namespace effnet::test {
namespace {

struct LayerCase {
  std::string name;
  std::function<std::shared_ptr<Module>()> make;
  Shape input;
  bool training = true;
};

void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.name; }
std::string case_name(const testing::TestParamInfo<LayerCase>& info) { return info.param.name; }

Conv2dOptions conv_options(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
                           bool bias = false, Padding padding = Padding::Symmetric, int64_t dilation = 1) {
  Conv2dOptions o(in, out, kernel, stride, groups);
  o.bias = bias;
  o.padding = padding;
  o.dilation = dilation;
  return o;
}

std::shared_ptr<Module> conv(Conv2dOptions o) { return std::make_shared<Conv2d>(o); }

// A batch norm whose running statistics are not the trivial 0 and 1, so eval mode is a real test.
std::shared_ptr<Module> batch_norm_with_history(int64_t channels, double eps) {
  auto bn = std::make_shared<BatchNorm2d>(BatchNorm2dOptions{channels, eps, 0.1});
  bn->running_mean.uniform_(-1.0, 1.0);
  bn->running_var.uniform_(0.5, 2.0);
  bn->weight.detach().uniform_(0.5, 1.5);
  bn->bias.detach().uniform_(-0.5, 0.5);
  return bn;
}

BlockOptions block(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t expand, double drop_path,
                   Padding padding = Padding::Symmetric) {
  BlockOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel = kernel;
  o.stride = stride;
  o.expand_ratio = expand;
  o.drop_path = drop_path;
  o.padding = padding;
  return o;
}

// Small shapes: every element of every input and parameter is checked by finite differences.
std::vector<LayerCase> gradcheck_cases() {
  constexpr Padding same = Padding::Same;
  return {
      {"conv3x3_bias", [] { return conv(conv_options(3, 4, 3, 1, 1, true)); }, {2, 3, 5, 5}},
      {"conv3x3_stride2", [] { return conv(conv_options(3, 4, 3, 2)); }, {2, 3, 7, 6}},
      {"conv_dilated", [] { return conv(conv_options(2, 3, 3, 1, 1, false, Padding::Symmetric, 2)); }, {1, 2, 7, 7}},
      {"conv_grouped", [] { return conv(conv_options(4, 6, 3, 1, 2)); }, {2, 4, 5, 5}},
      {"conv_depthwise5x5_stride2", [] { return conv(conv_options(4, 4, 5, 2, 4)); }, {2, 4, 9, 8}},
      {"conv1x1", [] { return conv(conv_options(5, 3, 1)); }, {2, 5, 4, 3}},
      {"conv_same_stride2_even", [] { return conv(conv_options(3, 4, 3, 2, 1, false, same)); }, {2, 3, 6, 8}},
      {"conv_same_stride2_odd", [] { return conv(conv_options(3, 4, 5, 2, 1, false, same)); }, {1, 3, 7, 7}},
      {"conv_same_depthwise", [] { return conv(conv_options(4, 4, 3, 2, 4, false, same)); }, {2, 4, 6, 6}},
      {"batch_norm_train", [] { return batch_norm_with_history(3, 1e-5); }, {2, 3, 4, 5}},
      {"batch_norm_eval", [] { return batch_norm_with_history(3, 1e-3); }, {2, 3, 4, 5}, false},
      {"silu", [] { return std::make_shared<SiLU>(); }, {2, 3, 4}},
      {"sigmoid", [] { return std::make_shared<Sigmoid>(); }, {2, 3, 4}},
      {"dropout_train", [] { return std::make_shared<Dropout>(0.5); }, {4, 6}},
      {"dropout_eval", [] { return std::make_shared<Dropout>(0.5); }, {4, 6}, false},
      {"drop_path_train", [] { return std::make_shared<DropPath>(0.3); }, {4, 2, 3, 3}},
      {"drop_path_eval", [] { return std::make_shared<DropPath>(0.3); }, {4, 2, 3, 3}, false},
      {"squeeze_excite", [] { return std::make_shared<SqueezeExcite>(8, 2); }, {2, 8, 3, 4}},
      {"linear", [] { return std::make_shared<Linear>(5, 3); }, {4, 5}},
      {"global_avg_pool", [] { return std::make_shared<GlobalAvgPool2d>(); }, {2, 3, 4, 5}},
      {"flatten", [] { return std::make_shared<Flatten>(); }, {2, 3, 2, 2}},
      {"depthwise_separable_skip_train",
       [] { return std::make_shared<DepthwiseSeparable>(block(4, 4, 3, 1, 1, 0.25)); }, {2, 4, 5, 5}},
      {"depthwise_separable_eval", [] { return std::make_shared<DepthwiseSeparable>(block(4, 6, 3, 1, 1, 0)); },
       {2, 4, 5, 5}, false},
      {"mbconv_skip_train", [] { return std::make_shared<InvertedResidual>(block(4, 4, 3, 1, 2, 0.25)); },
       {2, 4, 5, 5}},
      {"mbconv_stride2_same_train",
       [] { return std::make_shared<InvertedResidual>(block(4, 6, 5, 2, 2, 0, Padding::Same)); }, {2, 4, 6, 6}},
      {"mbconv_eval", [] { return std::make_shared<InvertedResidual>(block(4, 4, 3, 1, 2, 0.25)); }, {2, 4, 5, 5},
       false},
  };
}

void run_layer_gradcheck(const LayerCase& c, Device device) {
  manual_seed(5);
  std::shared_ptr<Module> layer = c.make();
  layer->to(kFloat64);
  layer->to(device);
  layer->train(c.training);
  Tensor x = randn(c.input, kFloat64).to(device);
  x.requires_grad_();
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : layer->parameters()) inputs.push_back(p);
  const autograd::GradcheckResult r = autograd::gradcheck([&] { return layer->forward(x); }, inputs);
  EXPECT_TRUE(r.ok) << c.name << " on " << device.str() << ":\n" << r.report;
  EXPECT_GT(r.checked, 0);
}

class LayerGrad : public testing::TestWithParam<LayerCase> {};
class LayerGradCuda : public testing::TestWithParam<LayerCase> {};

TEST_P(LayerGrad, MatchesFiniteDifferencesOnCpu) { run_layer_gradcheck(GetParam(), Device::cpu()); }
TEST_P(LayerGradCuda, MatchesFiniteDifferencesOnCuda) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  run_layer_gradcheck(GetParam(), Device::cuda(0));
}

INSTANTIATE_TEST_SUITE_P(AllLayers, LayerGrad, testing::ValuesIn(gradcheck_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(AllLayers, LayerGradCuda, testing::ValuesIn(gradcheck_cases()), case_name);

// Shapes from EfficientNet-B4 (width 1.4, depth 1.8) at a small batch and resolution.
std::vector<LayerCase> parity_cases() {
  return {
      {"stem_conv3x3_s2_48", [] { return conv(conv_options(3, 48, 3, 2)); }, {2, 3, 64, 64}},
      {"stem_conv_same_s2", [] { return conv(conv_options(3, 48, 3, 2, 1, false, Padding::Same)); },
       {2, 3, 64, 64}},
      {"depthwise5x5_s2_192", [] { return conv(conv_options(192, 192, 5, 2, 192)); }, {2, 192, 24, 24}},
      {"depthwise3x3_s1_336", [] { return conv(conv_options(336, 336, 3, 1, 336)); }, {2, 336, 12, 12}},
      {"pointwise_1632_to_272", [] { return conv(conv_options(1632, 272, 1)); }, {2, 1632, 6, 6}},
      {"pointwise_272_to_1632", [] { return conv(conv_options(272, 1632, 1)); }, {2, 272, 6, 6}},
      {"batch_norm_1632_train", [] { return batch_norm_with_history(1632, 1e-5); }, {4, 1632, 6, 6}},
      {"batch_norm_1632_eval", [] { return batch_norm_with_history(1632, 1e-5); }, {4, 1632, 6, 6}, false},
      {"squeeze_excite_1632_68", [] { return std::make_shared<SqueezeExcite>(1632, 68); }, {2, 1632, 6, 6}},
      {"dropout_p07", [] { return std::make_shared<Dropout>(0.7); }, {8, 1792}},
      {"drop_path_p02", [] { return std::make_shared<DropPath>(0.2); }, {8, 56, 12, 12}},
      {"silu_336", [] { return std::make_shared<SiLU>(); }, {2, 336, 12, 12}},
      {"sigmoid_336", [] { return std::make_shared<Sigmoid>(); }, {2, 336, 12, 12}},
      {"global_avg_pool_1792", [] { return std::make_shared<GlobalAvgPool2d>(); }, {8, 1792, 12, 12}},
      {"flatten_1792", [] { return std::make_shared<Flatten>(); }, {8, 1792, 1, 1}},
      {"linear_1792_to_18", [] { return std::make_shared<Linear>(1792, 18); }, {8, 1792}},
      {"mbconv_56_k5_e6_train",
       [] { return std::make_shared<InvertedResidual>(block(56, 56, 5, 1, 6, 0.2)); }, {2, 56, 12, 12}},
      {"mbconv_32_to_56_k5_s2", [] { return std::make_shared<InvertedResidual>(block(32, 56, 5, 2, 6, 0)); },
       {2, 32, 16, 16}},
      {"depthwise_separable_48_to_24", [] { return std::make_shared<DepthwiseSeparable>(block(48, 24, 3, 1, 1, 0)); },
       {2, 48, 16, 16}},
  };
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  // fp32 sums in another order: relative 1e-4 of each value, plus 1e-5 of the tensor's largest value for
  // values that cancel to near zero.
  size_t bad = 0, worst = 0;
  double worst_excess = -INFINITY;
  for (size_t i = 0; i < g.size(); ++i) {
    const double excess = std::abs(g[i] - w[i]) - (1e-5 * scale + 1e-4 * std::abs(w[i]));
    if (excess > 0 || std::isnan(g[i])) ++bad;
    if (excess > worst_excess || std::isnan(g[i])) {
      worst_excess = std::isnan(g[i]) ? INFINITY : excess;
      worst = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << g.size() << " elements differ; worst [" << worst << "] "
                     << g[worst] << " vs " << w[worst] << " (largest value " << scale << ")";
}

class LayerParityCuda : public testing::TestWithParam<LayerCase> {};

TEST_P(LayerParityCuda, Float32MatchesCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const LayerCase& c = GetParam();
  manual_seed(9);
  std::shared_ptr<Module> on_cpu = c.make();
  manual_seed(9);
  std::shared_ptr<Module> on_gpu = c.make();
  on_gpu->to(Device::cuda(0));
  on_cpu->train(c.training);
  on_gpu->train(c.training);
  manual_seed(10);
  Tensor x_cpu = randn(c.input);
  Tensor x_gpu = x_cpu.detach().cuda();
  x_cpu.requires_grad_();
  x_gpu.requires_grad_();
  manual_seed(11);  // the same dropout masks on both devices (Philox gives both the same numbers)
  const Tensor y_cpu = on_cpu->forward(x_cpu);
  manual_seed(11);
  const Tensor y_gpu = on_gpu->forward(x_gpu);
  expect_close(y_gpu, y_cpu, c.name + " forward");
  const Tensor cotangent = randn(y_cpu.shape());
  y_cpu.backward(cotangent);
  y_gpu.backward(cotangent.cuda());
  expect_close(x_gpu.grad(), x_cpu.grad(), c.name + " input gradient");
  const auto params_cpu = on_cpu->named_parameters(), params_gpu = on_gpu->named_parameters();
  for (size_t k = 0; k < params_cpu.size(); ++k) {
    expect_close(params_gpu[k].second.grad(), params_cpu[k].second.grad(), c.name + " gradient of " + params_cpu[k].first);
  }
  const auto buffers_cpu = on_cpu->named_buffers(), buffers_gpu = on_gpu->named_buffers();
  for (size_t k = 0; k < buffers_cpu.size(); ++k) {
    expect_close(buffers_gpu[k].second, buffers_cpu[k].second, c.name + " buffer " + buffers_cpu[k].first);
  }
}

INSTANTIATE_TEST_SUITE_P(B4Shapes, LayerParityCuda, testing::ValuesIn(parity_cases()), case_name);

}  // namespace
}  // namespace effnet::test
