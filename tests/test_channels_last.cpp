// Channels-last (NHWC) activations: the memory format of a 4-D tensor, outputs that keep their input's
// format, convolution and batch norm on channels-last operands (the CPU adapts them to row-major and
// back, CUDA passes NHWC descriptors to cuDNN and has NHWC 16-bit batch-norm kernels), and an EfficientNet
// step with EfficientNetOptions::channels_last equal to the row-major one.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/efficientnet.h"
#include "tensor/autocast.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/model_step.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

constexpr MemoryFormat kCL = MemoryFormat::ChannelsLast;

using test::reduced_b0;
using test::relative_error;
using test::StepResult;
using test::train_step;

TEST(ChannelsLast, FormatStridesAndSuggestion) {
  EXPECT_EQ(channels_last_strides({2, 3, 4, 5}), (Shape{60, 1, 15, 3}));
  const Tensor x = randn({2, 3, 4, 5});
  const Tensor cl = x.contiguous(kCL);
  EXPECT_EQ(cl.strides(), (Shape{60, 1, 15, 3}));
  EXPECT_TRUE(cl.is_contiguous(kCL));
  EXPECT_FALSE(cl.is_contiguous());
  EXPECT_EQ(cl.suggest_memory_format(), kCL);
  EXPECT_EQ(x.suggest_memory_format(), MemoryFormat::Contiguous);
  EXPECT_EQ(cl.to_vector(), x.to_vector());  // the same logical tensor
  EXPECT_EQ(cl.contiguous().to_vector(), x.to_vector());
  // A shape dense in both orders counts as row-major; a 3-D tensor is never channels-last.
  EXPECT_EQ(randn({2, 3, 1, 1}).contiguous(kCL).suggest_memory_format(), MemoryFormat::Contiguous);
  EXPECT_FALSE(randn({2, 3, 4}).is_contiguous(kCL));
  // The copy is on the tape: its gradient passes through.
  const Tensor leaf = randn({1, 2, 2, 2}).requires_grad_();
  sum(mul(leaf.contiguous(kCL), 3.0)).backward();
  EXPECT_EQ(leaf.grad().to_vector(), std::vector<double>(8, 3.0));
  // *_like and dtype casts keep the format.
  EXPECT_EQ(empty_like(cl).suggest_memory_format(), kCL);
  EXPECT_EQ(zeros_like(cl).suggest_memory_format(), kCL);
  EXPECT_EQ(cl.to(kBFloat16).suggest_memory_format(), kCL);
}

TEST(ChannelsLast, ElementwiseOutputsKeepTheLayout) {
  manual_seed(1);
  const Tensor x = randn({2, 6, 5, 7}), gate = randn({2, 6, 1, 1});
  const Tensor cl = x.contiguous(kCL);
  const Tensor s = silu(cl), m = mul(cl, gate), a = add(cl, cl);
  for (const Tensor* t : {&s, &m, &a}) EXPECT_EQ(t->suggest_memory_format(), kCL);
  EXPECT_EQ(s.to_vector(), silu(x).to_vector());
  EXPECT_EQ(m.to_vector(), mul(x, gate).to_vector());
  EXPECT_EQ(mul(gate, cl).suggest_memory_format(), kCL);  // the full-shaped operand decides
  // Reductions over channels-last strides.
  EXPECT_LT(relative_error(mean(cl, {2, 3}).to_vector(), mean(x, {2, 3}).to_vector()), 1e-7);
}

// Row-major and channels-last runs of one convolution and one batch norm, values and gradients.
struct Pass {
  std::vector<double> y, grad_x, grad_w, grad_gamma;
  Tensor y_tensor;
};

Pass conv_bn(const Device& device, bool channels_last, std::optional<DType> precision) {
  manual_seed(2);
  Tensor x = randn({3, 8, 9, 11}).to(device), w = mul(randn({8, 1, 3, 3}), 0.3).to(device);
  const Tensor w2 = mul(randn({16, 8, 3, 3}), 0.1).to(device), gamma = randn({16}).to(device),
               beta = randn({16}).to(device);
  Tensor rm = zeros({16}, TensorOptions(kFloat32, device)), rv = ones({16}, TensorOptions(kFloat32, device));
  // A random upstream gradient: the gradient of sum(y^2) through a training-mode batch norm is zero but for
  // eps (y's per-channel sum of squares does not depend on x), so its computed value is rounding noise.
  const Tensor upstream = randn({3, 16, 5, 6}).to(device);
  if (channels_last) x = x.contiguous(kCL);
  const Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_(), gl = gamma.detach().requires_grad_();
  Pass p;
  Tensor y;
  {
    AutocastGuard amp(precision);
    Conv2dGeometry depthwise;
    depthwise.pad_h = depthwise.pad_w = 1;
    depthwise.groups = 8;
    depthwise.stride_h = depthwise.stride_w = 2;
    Conv2dGeometry dense;
    dense.pad_h = dense.pad_w = 1;
    y = batch_norm(conv2d(conv2d(xl, wl, Tensor(), depthwise), w2, Tensor(), dense), gl, beta, rm, rv, true, 0.1,
                   1e-5);
  }
  p.y_tensor = y;
  p.y = y.to_vector();
  sum(mul(y.to(kFloat32), upstream)).backward();
  p.grad_x = xl.grad().to_vector();
  p.grad_w = wl.grad().to_vector();
  p.grad_gamma = gl.grad().to_vector();
  EXPECT_TRUE(wl.grad().is_contiguous()) << "the optimizer reads row-major gradients";
  return p;
}

TEST(ChannelsLast, ConvolutionAndBatchNormEqualRowMajorOnTheCpu) {
  for (std::optional<DType> precision : {std::optional<DType>{}, std::optional<DType>{kBFloat16}}) {
    SCOPED_TRACE(precision ? "bfloat16" : "float32");
    const Pass row = conv_bn(Device::cpu(), false, precision), cl = conv_bn(Device::cpu(), true, precision);
    EXPECT_EQ(cl.y_tensor.suggest_memory_format(), kCL);
    // The CPU computes channels-last operands on row-major copies: the same numbers.
    EXPECT_EQ(cl.y, row.y);
    EXPECT_LT(relative_error(cl.grad_x, row.grad_x), 1e-6);  // sums of gradients meet in another order
    EXPECT_LT(relative_error(cl.grad_w, row.grad_w), 1e-6);
    EXPECT_LT(relative_error(cl.grad_gamma, row.grad_gamma), 1e-6);
  }
}

TEST(ChannelsLast, EfficientNetStepEqualsRowMajorOnTheCpu) {
  {
    EfficientNet model(reduced_b0(true));
    EXPECT_EQ(model.forward_features(randn({2, 3, 64, 64})).suggest_memory_format(), kCL);  // 2 x 2 features
  }
  const StepResult row = train_step(Device::cpu(), reduced_b0(false), std::nullopt),
                   cl = train_step(Device::cpu(), reduced_b0(true), std::nullopt);
  EXPECT_LT(relative_error(cl.logits, row.logits), 1e-6);
  EXPECT_LT(relative_error(cl.grads, row.grads), 1e-6);
}

// ---- CUDA: NHWC descriptors and kernels against the row-major path

TEST(ChannelsLastCuda, ConvolutionAndBatchNormMatchRowMajor) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const Device gpu = Device::cuda(0);
  // float32: cuDNN's NHWC and NCHW algorithms sum in different orders; both are full float32.
  const Pass row32 = conv_bn(gpu, false, std::nullopt), cl32 = conv_bn(gpu, true, std::nullopt);
  EXPECT_EQ(cl32.y_tensor.suggest_memory_format(), kCL);
  EXPECT_LT(relative_error(cl32.y, row32.y), 1e-5);
  EXPECT_LT(relative_error(cl32.grad_x, row32.grad_x), 1e-5);
  EXPECT_LT(relative_error(cl32.grad_w, row32.grad_w), 1e-5);
  EXPECT_LT(relative_error(cl32.grad_gamma, row32.grad_gamma), 1e-5);
  // bfloat16 (effnet's NHWC batch-norm kernels): within bfloat16 rounding of the CPU's float32 path.
  const Pass cpu = conv_bn(Device::cpu(), false, std::nullopt), cl16 = conv_bn(gpu, true, kBFloat16);
  EXPECT_EQ(cl16.y_tensor.suggest_memory_format(), kCL);
  EXPECT_LT(relative_error(cl16.y, cpu.y), 0x1p-6);  // two roundings of 2^-8 and the statistics'
  EXPECT_LT(relative_error(cl16.grad_x, cpu.grad_x), 0x1p-5);
  EXPECT_LT(relative_error(cl16.grad_w, cpu.grad_w), 0x1p-5);
}

TEST(ChannelsLastCuda, EfficientNetStepMatchesRowMajor) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const Device gpu = Device::cuda(0);
  const StepResult cpu = train_step(Device::cpu(), reduced_b0(false), std::nullopt);
  const StepResult cl32 = train_step(gpu, reduced_b0(true), std::nullopt);
  EXPECT_LT(relative_error(cl32.logits, cpu.logits), 1e-4);
  EXPECT_LT(relative_error(cl32.grads, cpu.grads), 1e-3);
  // bfloat16: the bound of tests/test_mixed_precision.cpp (fifty roundings of half a 2^-7 spacing).
  const StepResult cl16 = train_step(gpu, reduced_b0(true), kBFloat16);
  std::printf("channels-last bfloat16 on cuda: logits %.2e, gradients %.2e relative to float32 on the cpu\n",
              relative_error(cl16.logits, cpu.logits), relative_error(cl16.grads, cpu.grads));
  EXPECT_LT(relative_error(cl16.logits, cpu.logits), 50 * 0x1p-7 / 2);
  EXPECT_LT(relative_error(cl16.grads, cpu.grads), 50 * 0x1p-7 / 2);
}

}  // namespace
}  // namespace effnet
