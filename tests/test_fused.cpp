// Fused kernels (EfficientNetOptions::fused, --fused) against the unfused ops they replace: batch norm +
// SiLU as one op. On the CPU its float64 and 16-bit forward is the unfused pair bit for bit (the same
// arithmetic, silu applied as the value is written), its float32 forward equal to rounding (a vectorizing
// exponential, tensor/cpu/vector_math.h); its backward recomputes the batch norm's output from x and the
// saved statistics, so its gradients equal the pair's to rounding, and it keeps one activation less. Its
// float64 gradient checks and fp32 CPU<->CUDA parity are op cases (tests/op_cases.cpp); on CUDA the 16-bit
// fused kernels are the unfused ones bit for bit, and the float32 ones (effnet's, not cuDNN's) match cuDNN's
// pair. addcmul (a residual plus the drop-path-scaled branch in one pass) is add(a, mul(b, c)) bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "layers/dropout.h"
#include "tensor/autocast.h"
#include "tensor/cpu/vector_math.h"
#include "tensor/memory.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/model_step.h"
#include "tests/test_util.h"

namespace effnet {
namespace {

using test::reduced_b0;
using test::relative_error;
using test::StepResult;
using test::train_step;

constexpr MemoryFormat kFormats[] = {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast};

struct BnSilu {
  Tensor y, running_mean, running_var;
  std::vector<double> grad_x, grad_gamma, grad_beta;
};

// One training-mode batch norm + SiLU, fused or as the pair, forward and backward against `upstream`.
// x has x_dtype (16-bit: mixed precision with float32 parameters), in `format`, on `device`.
BnSilu run_bn_silu(bool fused, const Device& device, DType param_dtype, DType x_dtype, MemoryFormat format,
                   const Shape& shape = {4, 6, 5, 7}) {
  manual_seed(21);
  const int64_t c = shape[1];
  const TensorOptions params(param_dtype, device);
  // A mean far from zero and a spread of gammas and betas, so that silu sees both signs.
  const Tensor x = add(mul(randn(shape), 2.0), 3.0).to(x_dtype).to(device).contiguous(format).requires_grad_();
  const Tensor gamma = randn({c}).to(param_dtype).to(device).requires_grad_();
  const Tensor beta = randn({c}).to(param_dtype).to(device).requires_grad_();
  const Tensor upstream = randn(shape).to(x_dtype).to(device);
  BnSilu r;
  r.running_mean = mul(ones({c}, params), 0.5);
  r.running_var = mul(ones({c}, params), 2.0);
  r.y = fused ? batch_norm_silu(x, gamma, beta, r.running_mean, r.running_var, true, 0.1, 1e-5)
              : silu(batch_norm(x, gamma, beta, r.running_mean, r.running_var, true, 0.1, 1e-5));
  sum(mul(r.y, upstream)).backward();
  r.grad_x = x.grad().to_vector();
  r.grad_gamma = gamma.grad().to_vector();
  r.grad_beta = beta.grad().to_vector();
  return r;
}

// How many elements of two equally long vectors differ (NaN counts as differing).
size_t differing(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  size_t count = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) count += a[i] == b[i] ? 0 : 1;
  return count;
}

std::string name_of(DType dtype, MemoryFormat format) {
  return std::string(dtype_name(dtype)) + (format == MemoryFormat::ChannelsLast ? " channels-last" : " row-major");
}

TEST(FusedBatchNormSilu, VectorExpIsWithinTwoUlpsOfExp) {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.00731) {
    const float v = static_cast<float>(x);
    const double exact = std::exp(static_cast<double>(v));
    worst = std::max(worst, std::abs(cpu::vector_exp(v) - exact) / exact);
  }
  EXPECT_LT(worst, 2 * 0x1p-23);
  EXPECT_EQ(cpu::vector_exp(0.0f), 1.0f);
  // Saturated ends, and NaN through.
  EXPECT_GT(cpu::vector_exp(1000.0f), 1e38f);
  EXPECT_GT(cpu::vector_exp(-1000.0f), 0.0f);
  EXPECT_LT(cpu::vector_exp(-1000.0f), 1e-37f);
  EXPECT_TRUE(std::isnan(cpu::vector_exp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(cpu::vector_sigmoid(200.0f), 1.0f);
  EXPECT_LT(cpu::vector_sigmoid(-200.0f), 1e-37f);
}

TEST(FusedBatchNormSilu, ForwardMatchesTheUnfusedPairOnTheCpu) {
  for (DType dtype : {kFloat32, kFloat64, kBFloat16, kFloat16}) {
    for (MemoryFormat format : kFormats) {
      SCOPED_TRACE(name_of(dtype, format));
      const DType params = dtype == kFloat64 ? kFloat64 : kFloat32;
      const BnSilu fused = run_bn_silu(true, Device::cpu(), params, dtype, format);
      const BnSilu pair = run_bn_silu(false, Device::cpu(), params, dtype, format);
      EXPECT_EQ(fused.y.dtype(), dtype);
      EXPECT_EQ(fused.y.suggest_memory_format(), format);
      if (dtype == kFloat32) {  // the vectorizing exponential: about an ulp
        EXPECT_LT(relative_error(fused.y.to_vector(), pair.y.to_vector()), 4 * 0x1p-24);
      } else {
        EXPECT_EQ(fused.y.to_vector(), pair.y.to_vector());
      }
      EXPECT_EQ(fused.running_mean.to_vector(), pair.running_mean.to_vector());
      EXPECT_EQ(fused.running_var.to_vector(), pair.running_var.to_vector());
    }
  }
}

TEST(FusedBatchNormSilu, GradientsMatchTheUnfusedPairOnTheCpu) {
  // The recomputed batch-norm output uses the saved (rounded) inverse std: float32 gradients differ from the
  // pair's by a few float32 roundings; float64 ones by a few float64 roundings.
  for (DType dtype : {kFloat32, kFloat64}) {
    for (MemoryFormat format : kFormats) {
      SCOPED_TRACE(name_of(dtype, format));
      const double tolerance = dtype == kFloat64 ? 1e-13 : 1e-5;
      const BnSilu fused = run_bn_silu(true, Device::cpu(), dtype, dtype, format);
      const BnSilu pair = run_bn_silu(false, Device::cpu(), dtype, dtype, format);
      EXPECT_LT(relative_error(fused.grad_x, pair.grad_x), tolerance);
      EXPECT_LT(relative_error(fused.grad_gamma, pair.grad_gamma), tolerance);
      EXPECT_LT(relative_error(fused.grad_beta, pair.grad_beta), tolerance);
    }
  }
  // 16-bit x: the CPU computes the fused backward in float32 without rounding the recomputed output to 16
  // bits (the pair stores it rounded), so the difference is one 16-bit rounding of the activation.
  for (DType dtype : {kBFloat16, kFloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const BnSilu fused = run_bn_silu(true, Device::cpu(), kFloat32, dtype, MemoryFormat::Contiguous);
    const BnSilu pair = run_bn_silu(false, Device::cpu(), kFloat32, dtype, MemoryFormat::Contiguous);
    const double rounding = dtype == kBFloat16 ? 0x1p-8 : 0x1p-11;
    EXPECT_LT(relative_error(fused.grad_x, pair.grad_x), 4 * rounding);
    EXPECT_LT(relative_error(fused.grad_gamma, pair.grad_gamma), 4 * rounding);
    EXPECT_LT(relative_error(fused.grad_beta, pair.grad_beta), 4 * rounding);
  }
}

TEST(FusedBatchNormSilu, KeepsOneActivationLessForTheBackward) {
  manual_seed(22);
  const Tensor x = randn({8, 16, 32, 32}).requires_grad_(), gamma = ones({16}).requires_grad_(),
               beta = zeros({16}).requires_grad_();
  Tensor rm = zeros({16}), rv = ones({16});
  const int64_t activation_bytes = x.numel() * 4;
  auto held_after_forward = [&](bool fused) {
    const size_t before = memory_stats(Device::cpu()).allocated;
    const Tensor y = fused ? batch_norm_silu(x, gamma, beta, rm, rv, true, 0.1, 1e-5)
                           : silu(batch_norm(x, gamma, beta, rm, rv, true, 0.1, 1e-5));
    // y and whatever its graph keeps for the backward are alive here.
    return static_cast<int64_t>(memory_stats(Device::cpu()).allocated - before);
  };
  const int64_t fused = held_after_forward(true), pair = held_after_forward(false);
  EXPECT_GE(fused, activation_bytes);                         // the output
  EXPECT_LT(fused, activation_bytes + activation_bytes / 8);  // and per-channel statistics only
  EXPECT_GE(pair - fused, activation_bytes);                  // the pair keeps the batch norm's output too
}

// Eval mode: one kernel for inference (nothing needs a gradient), the unfused pair's ops otherwise.
TEST(FusedBatchNormSilu, EvalModeMatchesTheUnfusedPair) {
  manual_seed(23);
  for (DType dtype : {kFloat32, kFloat64, kBFloat16}) {
    for (MemoryFormat format : kFormats) {
      SCOPED_TRACE(name_of(dtype, format));
      const DType params = dtype == kFloat64 ? kFloat64 : kFloat32;
      const Tensor x = randn({2, 3, 4, 5}).to(dtype).contiguous(format);
      const Tensor gamma = randn({3}).to(params), beta = randn({3}).to(params);
      const Tensor rm = randn({3}).to(params), rv = add(rand({3}), 0.5).to(params);
      const Tensor pair = silu(batch_norm(x, gamma, beta, rm, rv, false, 0.1, 1e-5));
      Tensor fused;
      {
        autograd::NoGradGuard no_grad;
        fused = batch_norm_silu(x, gamma, beta, rm, rv, false, 0.1, 1e-5);
      }
      EXPECT_EQ(fused.dtype(), dtype);
      EXPECT_EQ(fused.suggest_memory_format(), format);
      // float32: the vectorizing exponential; bfloat16: the pair rounds x scale before adding the shift.
      const double tolerance = dtype == kFloat64 ? 1e-15 : dtype == kFloat32 ? 4 * 0x1p-24 : 2 * 0x1p-8;
      EXPECT_LT(relative_error(fused.to_vector(), pair.to_vector()), tolerance);
    }
  }
  // With gradients wanted, eval mode differentiates the pair's ops.
  const Tensor x = randn({2, 3, 4, 5}).requires_grad_(), gamma = randn({3}).requires_grad_();
  const Tensor beta = randn({3}), rm = randn({3}), rv = add(rand({3}), 0.5);
  sum(batch_norm_silu(x, gamma, beta, rm, rv, false, 0.1, 1e-5)).backward();
  const std::vector<double> grad_x = x.grad().to_vector(), grad_gamma = gamma.grad().to_vector();
  x.set_grad(Tensor());
  gamma.set_grad(Tensor());
  sum(silu(batch_norm(x, gamma, beta, rm, rv, false, 0.1, 1e-5))).backward();
  EXPECT_EQ(x.grad().to_vector(), grad_x);
  EXPECT_EQ(gamma.grad().to_vector(), grad_gamma);
}

TEST(FusedBatchNormSilu, ErrorsNameTheFusedOp) {
  const Tensor x = randn({2, 3, 4, 5});
  const std::string error =
      test::error_of([&] { batch_norm_silu(x, ones({4}), zeros({4}), zeros({4}), ones({4}), true, 0.1, 1e-5); });
  EXPECT_NE(error.find("batch_norm_silu: per-channel tensor"), std::string::npos) << error;
  EXPECT_NE(test::error_of([&] { batch_norm_silu(randn({2, 3}), ones({3}), zeros({3}), zeros({3}), ones({3}), true,
                                                 0.1, 1e-5); })
                .find("batch_norm_silu: expected an input [N, C, H, W]"),
            std::string::npos);
}

// channel_gate against mul: the same forward, gradients to rounding (the gate's sum in double on the CPU,
// over rounded products for mul). The operands are drawn, rounded to `storage` and computed in `dtype`.
struct Gate {
  std::vector<double> y, grad_x, grad_gate;
};

Gate run_gate(bool fused, const Device& device, DType dtype, MemoryFormat format, DType storage = kFloat64,
              const Shape& shape = {3, 5, 6, 7}) {
  manual_seed(25);
  auto drawn = [&](const Tensor& t) { return t.to(storage).to(dtype).to(device); };
  const Tensor x = drawn(randn(shape)).contiguous(format).requires_grad_();
  const Tensor gate = drawn(rand({shape[0], shape[1], 1, 1})).requires_grad_();
  const Tensor upstream = drawn(randn(shape));
  const Tensor y = fused ? channel_gate(x, gate) : mul(x, gate);
  EXPECT_EQ(y.suggest_memory_format(), format);
  sum(mul(y, upstream)).backward();
  EXPECT_EQ(x.grad().dtype(), dtype);
  return {y.to_vector(), x.grad().to_vector(), gate.grad().to_vector()};
}

TEST(FusedChannelGate, MatchesMul) {
  for (DType dtype : {kFloat32, kFloat64, kBFloat16}) {
    for (MemoryFormat format : kFormats) {
      SCOPED_TRACE(name_of(dtype, format));
      const Gate fused = run_gate(true, Device::cpu(), dtype, format);
      const Gate pair = run_gate(false, Device::cpu(), dtype, format);
      EXPECT_EQ(fused.y, pair.y);
      EXPECT_EQ(fused.grad_x, pair.grad_x);  // the same products, rounded once
      if (dtype == kBFloat16) {
        // mul rounds each product to 16 bits before summing, channel_gate only the sum: against the sums of
        // the same bfloat16 operands in float64, one rounding (bfloat16 keeps 8 bits: u = 2^-8) and no more
        // error than mul's.
        const Gate exact = run_gate(false, Device::cpu(), kFloat64, format, kBFloat16);
        const double fused_error = relative_error(fused.grad_gate, exact.grad_gate);
        EXPECT_LT(fused_error, 0x1p-8);
        EXPECT_LE(fused_error, relative_error(pair.grad_gate, exact.grad_gate));
      } else {
        EXPECT_LT(relative_error(fused.grad_gate, pair.grad_gate), dtype == kFloat64 ? 1e-15 : 1e-6);
      }
    }
  }
  const std::string error = test::error_of([] { channel_gate(randn({2, 3, 4, 5}), rand({2, 3, 1})); });
  EXPECT_NE(error.find("channel_gate: the gate"), std::string::npos) << error;
  EXPECT_NE(error.find("should be [2, 3, 1, 1]"), std::string::npos) << error;
}

// channel_gate_conv2d against channel_gate then conv2d (a 1x1 projection with bias, as in a block, or a
// padded 3x3 with stride 2 and groups): the output and the four gradients.
using Results = std::vector<std::vector<double>>;  // an output, then the inputs' gradients

// Each of `fused`'s results has the bits of `pair`'s.
void expect_same_bits(const Results& fused, const Results& pair) {
  ASSERT_EQ(fused.size(), pair.size());
  for (size_t i = 0; i < fused.size(); ++i) EXPECT_EQ(differing(fused[i], pair[i]), 0u) << "result " << i;
}

Results run_gate_conv(bool fused, const Device& device, DType dtype, MemoryFormat format, bool projection) {
  manual_seed(26);
  const int64_t k = projection ? 6 : 4, r = projection ? 1 : 3, groups = projection ? 1 : 2;
  Conv2dGeometry g;
  g.pad_h = g.pad_w = projection ? 0 : 1;
  g.stride_h = g.stride_w = projection ? 1 : 2;
  g.groups = groups;
  auto drawn = [&](const Tensor& t) { return t.to(dtype).to(device); };
  const Tensor x = drawn(randn({3, 4, 9, 7})).contiguous(format).requires_grad_();
  const Tensor gate = drawn(rand({3, 4, 1, 1})).requires_grad_();
  const Tensor w = drawn(randn({k, 4 / groups, r, r})).requires_grad_();
  const Tensor bias = drawn(randn({k})).requires_grad_();
  const Tensor y = fused ? channel_gate_conv2d(x, gate, w, bias, g) : conv2d(channel_gate(x, gate), w, bias, g);
  EXPECT_EQ(y.suggest_memory_format(), format);
  sum(mul(y, drawn(randn(y.shape())))).backward();
  return {y.to_vector(), x.grad().to_vector(), gate.grad().to_vector(), w.grad().to_vector(),
          bias.grad().to_vector()};
}

TEST(FusedChannelGateConv, IsTheGateAndTheConvolutionBitForBit) {
  for (DType dtype : {kFloat32, kFloat64, kBFloat16}) {
    for (MemoryFormat format : kFormats) {
      for (bool projection : {true, false}) {
        SCOPED_TRACE(name_of(dtype, format) + (projection ? ", 1x1 projection" : ", 3x3 stride 2 groups 2"));
        expect_same_bits(run_gate_conv(true, Device::cpu(), dtype, format, projection),
                         run_gate_conv(false, Device::cpu(), dtype, format, projection));
      }
    }
  }
  const std::string error = test::error_of(
      [] { channel_gate_conv2d(randn({2, 3, 4, 5}), rand({2, 1, 1, 1}), randn({4, 3, 1, 1}), Tensor(), {}); });
  EXPECT_NE(error.find("channel_gate_conv2d: the gate"), std::string::npos) << error;
}

// Only some operands wanting a gradient; a second backward names the fused op.
TEST(FusedChannelGateConv, ComputesTheWantedGradientsOnly) {
  for (int wanted = 0; wanted < 3; ++wanted) {  // x, the gate, the weight
    SCOPED_TRACE(wanted);
    std::vector<double> grads[2];
    for (int fused = 0; fused < 2; ++fused) {
      manual_seed(28);
      Tensor operands[] = {randn({2, 4, 5, 6}), rand({2, 4, 1, 1}), randn({3, 4, 1, 1})};
      operands[wanted].requires_grad_();
      const auto& [x, gate, w] = operands;
      const Tensor y =
          fused ? channel_gate_conv2d(x, gate, w, Tensor(), {}) : conv2d(channel_gate(x, gate), w, Tensor(), {});
      sum(mul(y, y)).backward();
      for (int i = 0; i < 3; ++i) EXPECT_EQ(operands[i].grad().defined(), i == wanted);
      grads[fused] = operands[wanted].grad().to_vector();
    }
    EXPECT_EQ(differing(grads[1], grads[0]), 0u);
  }
  const Tensor x = randn({2, 4, 5, 6}).requires_grad_();
  const Tensor y = channel_gate_conv2d(x, rand({2, 4, 1, 1}), randn({3, 4, 1, 1}), Tensor(), {});
  y.backward(ones_like(y));
  const std::string error = test::error_of([&] { y.backward(ones_like(y)); });
  EXPECT_NE(error.find("backward through channel_gate_conv2d a second time"), std::string::npos) << error;
}

// Mixed precision: squeeze-excite's bfloat16 x and gate with float32 parameters (the fused node), and a float32
// x, whose product the pair casts (run as the pair): the pair's bits either way.
TEST(FusedChannelGateConv, UnderAutocastIsThePair) {
  for (DType x_dtype : {kBFloat16, kFloat32}) {
    SCOPED_TRACE(dtype_name(x_dtype));
    Results results[2];
    for (int fused = 0; fused < 2; ++fused) {
      manual_seed(29);
      const Tensor x = randn({2, 4, 5, 6}).to(x_dtype).requires_grad_();
      const Tensor gate = rand({2, 4, 1, 1}).to(x_dtype).requires_grad_();
      const Tensor w = randn({3, 4, 1, 1}).requires_grad_(), bias = randn({3}).requires_grad_();
      Tensor y;
      {
        AutocastGuard amp(kBFloat16);
        y = fused ? channel_gate_conv2d(x, gate, w, bias, {}) : conv2d(channel_gate(x, gate), w, bias, {});
      }
      EXPECT_EQ(y.dtype(), kBFloat16);
      sum(mul(y, randn(y.shape()).to(kBFloat16))).backward();
      results[fused] = {y.to_vector(), x.grad().to_vector(), gate.grad().to_vector(), w.grad().to_vector(),
                        bias.grad().to_vector()};
    }
    expect_same_bits(results[1], results[0]);
  }
}

TEST(FusedChannelGateConv, KeepsTheGatedActivationOutOfTheTape) {
  manual_seed(27);
  const Tensor x = randn({8, 32, 32, 32}).requires_grad_(), gate = rand({8, 32, 1, 1}).requires_grad_();
  const Tensor w = randn({16, 32, 1, 1}).requires_grad_();
  const int64_t activation_bytes = x.numel() * 4;
  auto held_after_forward = [&](bool fused) {
    const size_t before = memory_stats(Device::cpu()).allocated;
    const Tensor y =
        fused ? channel_gate_conv2d(x, gate, w, Tensor(), {}) : conv2d(channel_gate(x, gate), w, Tensor(), {});
    return static_cast<int64_t>(memory_stats(Device::cpu()).allocated - before);
  };
  const int64_t fused = held_after_forward(true), pair = held_after_forward(false);
  EXPECT_LT(fused, activation_bytes / 2 + activation_bytes / 8);  // the output (16 of 32 channels) only
  EXPECT_GE(pair - fused, activation_bytes);                       // the pair keeps x gate as well
}

// addcmul(a, b, c) and add(a, mul(b, c)) on `device`: the output and the three gradients. The operands
// are drawn in float64 over several binades (not so many that float16 sums overflow) and then cast, so that
// products round differently in every dtype. b is [3, 5, 6, 7]; a and c have the shapes of `shapes`.
struct Broadcast {
  const char* name;
  Shape a, c;
};
// Every path of the CPU loop: a and c contiguous or one value per run, and both strided.
const Broadcast kBroadcasts[] = {
    {"drop path", {3, 5, 6, 7}, {3, 1, 1, 1}},
    {"all full", {3, 5, 6, 7}, {3, 5, 6, 7}},
    {"batch norm", {1, 5, 1, 1}, {1, 5, 1, 1}},
    {"a per sample", {3, 1, 1, 1}, {3, 5, 6, 7}},
    {"a per column", {7}, {5, 6, 1}},
};
Results run_addcmul(bool fused, const Device& device, DType dtype, MemoryFormat format, const Broadcast& shapes) {
  manual_seed(5);
  const Shape shape{3, 5, 6, 7};
  auto operand = [&](const Shape& s) {
    Tensor t = mul(randn(s, kFloat64), exp(randn(s, kFloat64))).to(dtype).to(device);
    return (s.size() == 4 ? t.contiguous(format) : t).requires_grad_();
  };
  const Tensor a = operand(shapes.a), b = operand(shape), c = operand(shapes.c);
  const Tensor upstream = operand(shape).detach();
  const Tensor out = fused ? addcmul(a, b, c) : add(a, mul(b, c));
  EXPECT_EQ(out.suggest_memory_format(), format);
  sum(mul(out, upstream)).backward();
  return {out.to_vector(), a.grad().to_vector(), b.grad().to_vector(), c.grad().to_vector()};
}

TEST(FusedAddcmul, IsAddOfMulBitForBit) {
  for (DType dtype : {kFloat32, kFloat64, kBFloat16, kFloat16}) {
    for (MemoryFormat format : kFormats) {
      for (const Broadcast& shapes : kBroadcasts) {
        SCOPED_TRACE(name_of(dtype, format) + ", " + shapes.name);
        expect_same_bits(run_addcmul(true, Device::cpu(), dtype, format, shapes),
                         run_addcmul(false, Device::cpu(), dtype, format, shapes));
      }
    }
  }
  // The layout follows b's, as add(a, mul(b, c))'s does.
  const Tensor rows = randn({2, 3, 4, 5}), nhwc = randn({2, 3, 4, 5}).contiguous(MemoryFormat::ChannelsLast);
  EXPECT_EQ(addcmul(rows, nhwc, ones({2, 1, 1, 1})).suggest_memory_format(), MemoryFormat::ChannelsLast);
  EXPECT_EQ(addcmul(nhwc, rows, ones({2, 1, 1, 1})).suggest_memory_format(), MemoryFormat::Contiguous);
  // Three broadcast shapes; a dtype mismatch names the op.
  const Tensor out = addcmul(ones({4}), full({3, 1}, 2.0), full({2, 1, 1}, 3.0));
  EXPECT_EQ(out.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(out.to_vector(), std::vector<double>(24, 7.0));
  const std::string error = test::error_of([] { addcmul(ones({2}), ones({2}), ones({2}, kFloat64)); });
  EXPECT_NE(error.find("addcmul"), std::string::npos) << error;
}

// The residual connection: the same random masks, bits and gradients as drop path's mul and then add, in
// training and eval mode.
TEST(FusedAddcmul, DropPathForwardAddIsTheTwoOps) {
  DropPath drop_path(0.5);
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "train" : "eval");
    drop_path.train(training);
    std::vector<double> outputs[2], grads_x[2], grads_shortcut[2];
    for (int fused = 0; fused < 2; ++fused) {
      manual_seed(8);
      const Tensor x = randn({16, 3, 4, 5}).requires_grad_();
      const Tensor shortcut = randn({16, 3, 4, 5}).requires_grad_();
      const Tensor upstream = randn({16, 3, 4, 5});
      manual_seed(9);
      const Tensor y = fused ? drop_path.forward_add(x, shortcut) : add(drop_path.forward(x), shortcut);
      sum(mul(y, upstream)).backward();
      outputs[fused] = y.to_vector();
      grads_x[fused] = x.grad().to_vector();
      grads_shortcut[fused] = shortcut.grad().to_vector();
    }
    EXPECT_EQ(outputs[1], outputs[0]);
    EXPECT_EQ(grads_x[1], grads_x[0]);
    EXPECT_EQ(grads_shortcut[1], grads_shortcut[0]);
    // Training drops some samples' branch (their x gradient is 0) and keeps others'.
    const auto zeros = std::count(grads_x[1].begin(), grads_x[1].end(), 0.0);
    EXPECT_EQ(zeros > 0 && zeros < 16 * 60, training) << zeros;
  }
}

// Eval-mode batch norm is x scale + shift as one addcmul: the bits and gradients of the multiply and add it
// was built of before.
TEST(FusedAddcmul, BatchNormEvalIsTheMultiplyAndAdd) {
  for (DType dtype : {kFloat32, kFloat64, kBFloat16}) {
    for (MemoryFormat format : kFormats) {
      SCOPED_TRACE(name_of(dtype, format));
      const DType param_dtype = is_16bit(dtype) ? kFloat32 : dtype;
      std::vector<double> outputs[2], grads_x[2], grads_gamma[2];
      for (int fused = 0; fused < 2; ++fused) {
        manual_seed(4);
        const Tensor x = mul(randn({3, 6, 5, 7}), 3.0).to(dtype).contiguous(format).requires_grad_();
        const Tensor gamma = randn({6}).to(param_dtype).requires_grad_();
        const Tensor beta = randn({6}).to(param_dtype).requires_grad_();
        const Tensor running_mean = randn({6}).to(param_dtype), running_var = rand({6}).to(param_dtype);
        const Tensor upstream = randn({3, 6, 5, 7}).to(dtype);
        Tensor y;
        if (fused) {
          y = batch_norm(x, gamma, beta, running_mean, running_var, false, 0.1, 1e-5);
        } else {
          const Tensor scale = mul(gamma, rsqrt(add(running_var, 1e-5)));
          const Tensor shift = sub(beta, mul(running_mean, scale));
          y = add(mul(x, scale.to(dtype).view({1, 6, 1, 1})), shift.to(dtype).view({1, 6, 1, 1}));
        }
        EXPECT_EQ(y.suggest_memory_format(), format);
        sum(mul(y, upstream)).backward();
        outputs[fused] = y.to_vector();
        grads_x[fused] = x.grad().to_vector();
        grads_gamma[fused] = gamma.grad().to_vector();
      }
      EXPECT_EQ(differing(outputs[1], outputs[0]), 0u);
      EXPECT_EQ(differing(grads_x[1], grads_x[0]), 0u);
      EXPECT_EQ(differing(grads_gamma[1], grads_gamma[0]), 0u);
    }
  }
}

// peak CPU bytes of one reduced-B0 training step
StepResult cpu_step_with_peak(bool fused, size_t& peak) {
  EfficientNetOptions options = reduced_b0();
  options.fused = fused;
  reset_peak_memory_stats(Device::cpu());
  StepResult r = train_step(Device::cpu(), options, std::nullopt);
  peak = memory_stats(Device::cpu()).peak_allocated;
  return r;
}

TEST(FusedEfficientNet, StepMatchesTheUnfusedModelWithLessMemory) {
  size_t fused_peak = 0, pair_peak = 0;
  const StepResult pair = cpu_step_with_peak(false, pair_peak);
  const StepResult fused = cpu_step_with_peak(true, fused_peak);
  std::printf("reduced B0 step on the cpu: peak %.2f MiB unfused, %.2f MiB fused; relative difference of the "
              "logits %.1e, of the gradients %.1e\n", pair_peak / 1048576.0, fused_peak / 1048576.0,
              relative_error(fused.logits, pair.logits), relative_error(fused.grads, pair.grads));
  // An ulp per fused layer, carried through 16 of them.
  EXPECT_LT(relative_error(fused.logits, pair.logits), 1e-5);
  EXPECT_NEAR(fused.loss, pair.loss, 1e-6 * std::abs(pair.loss));
  EXPECT_LT(relative_error(fused.grads, pair.grads), 1e-5);
  EXPECT_LT(fused_peak, pair_peak * 0.9);
}

// ---- CUDA

TEST(FusedBatchNormSiluCuda, SixteenBitIsTheUnfusedPairBitForBit) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  // Both run effnet's 16-bit kernels; the fused ones round the batch norm's output and silu's gradient to
  // 16 bits exactly where the pair stores them, and sum in the same order. The second shape has several
  // splits per channel and more than one 32-channel NHWC tile.
  for (DType dtype : {kBFloat16, kFloat16}) {
    for (MemoryFormat format : kFormats) {
      for (const Shape& shape : {Shape{4, 6, 5, 7}, Shape{8, 40, 32, 32}}) {
        SCOPED_TRACE(name_of(dtype, format) + " " + shape_str(shape));
        const BnSilu fused = run_bn_silu(true, Device::cuda(0), kFloat32, dtype, format, shape);
        const BnSilu pair = run_bn_silu(false, Device::cuda(0), kFloat32, dtype, format, shape);
        EXPECT_EQ(fused.y.suggest_memory_format(), format);
        EXPECT_EQ(differing(fused.y.to_vector(), pair.y.to_vector()), 0u);
        EXPECT_EQ(differing(fused.grad_x, pair.grad_x), 0u);
        EXPECT_EQ(differing(fused.grad_gamma, pair.grad_gamma), 0u);
        EXPECT_EQ(differing(fused.grad_beta, pair.grad_beta), 0u);
      }
    }
  }
}

TEST(FusedBatchNormSiluCuda, Float32MatchesCudnnsPair) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (MemoryFormat format : kFormats) {
    SCOPED_TRACE(name_of(kFloat32, format));
    const BnSilu fused = run_bn_silu(true, Device::cuda(0), kFloat32, kFloat32, format);
    const BnSilu pair = run_bn_silu(false, Device::cuda(0), kFloat32, kFloat32, format);
    // effnet's float32 statistics (shifted single-pass sums) against cuDNN's: mean and invstd differ by a
    // few float32 roundings, which move y = O(1) by ~3e-7.
    EXPECT_LT(relative_error(fused.y.to_vector(), pair.y.to_vector()), 2e-6);
    EXPECT_LT(relative_error(fused.running_var.to_vector(), pair.running_var.to_vector()), 1e-6);
    EXPECT_LT(relative_error(fused.grad_x, pair.grad_x), 1e-5);
    EXPECT_LT(relative_error(fused.grad_gamma, pair.grad_gamma), 1e-5);
    EXPECT_LT(relative_error(fused.grad_beta, pair.grad_beta), 1e-5);
  }
}

TEST(FusedBatchNormSiluCuda, EvalModeMatchesTheCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  manual_seed(24);
  autograd::NoGradGuard no_grad;
  for (DType dtype : {kFloat32, kFloat64, kBFloat16}) {
    for (MemoryFormat format : kFormats) {
      SCOPED_TRACE(name_of(dtype, format));
      const DType params = dtype == kFloat64 ? kFloat64 : kFloat32;
      const Tensor x = randn({4, 40, 9, 9}).to(dtype).contiguous(format);
      const Tensor gamma = randn({40}).to(params), beta = randn({40}).to(params), rm = randn({40}).to(params),
                   rv = add(rand({40}), 0.5).to(params);
      const Tensor cpu = batch_norm_silu(x, gamma, beta, rm, rv, false, 0.1, 1e-5);
      const Tensor gpu = batch_norm_silu(x.cuda().contiguous(format), gamma.cuda(), beta.cuda(), rm.cuda(), rv.cuda(),
                                         false, 0.1, 1e-5);
      EXPECT_EQ(gpu.suggest_memory_format(), format);
      // CUDA's expf against the vectorizing exponential, and z = x scale + shift as one FMA on the GPU.
      const double tolerance = dtype == kFloat64 ? 1e-14 : dtype == kFloat32 ? 1e-6 : 2 * 0x1p-8;
      EXPECT_LT(relative_error(gpu.cpu().to_vector(), cpu.to_vector()), tolerance);
    }
  }
}

// The second shape walks more than one NCHW block stride (HW 323 > 256 threads), has a partly filled second
// 32-channel NHWC tile, and the third has few channels and many pixels, so the NHWC kernel splits the pixels.
TEST(FusedChannelGateCuda, MatchesTheCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (DType dtype : {kFloat32, kBFloat16, kFloat16}) {
    for (MemoryFormat format : kFormats) {
      for (const Shape& shape : {Shape{3, 5, 6, 7}, Shape{2, 40, 17, 19}, Shape{2, 8, 120, 120}}) {
        SCOPED_TRACE(name_of(dtype, format) + " " + shape_str(shape));
        const Gate gpu = run_gate(true, Device::cuda(0), dtype, format, kFloat64, shape);
        const Gate cpu = run_gate(true, Device::cpu(), dtype, format, kFloat64, shape);
        EXPECT_EQ(differing(gpu.y, cpu.y), 0u);
        EXPECT_EQ(differing(gpu.grad_x, cpu.grad_x), 0u);  // one product, rounded once, on both
        // Up to 14,400 products per sum, in float32 partial sums on the GPU against double on the CPU;
        // for 16-bit, the two sums round to neighbouring values now and then (an ulp is 2^-7 of one
        // element, far less of the norm).
        EXPECT_LT(relative_error(gpu.grad_gate, cpu.grad_gate), dtype == kFloat32 ? 1e-5 : 0x1p-8);
      }
    }
  }
}

// nvcc would contract a float32 or float64 a + b c into an FMA unless told not to; the GPU's 16-bit products
// round as the CPU's.
TEST(FusedAddcmulCuda, IsAddOfMulBitForBitAndTheCpus) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (DType dtype : {kFloat32, kFloat64, kBFloat16, kFloat16}) {
    for (MemoryFormat format : kFormats) {
      for (const Broadcast& shapes : kBroadcasts) {
        SCOPED_TRACE(name_of(dtype, format) + ", " + shapes.name);
        const Results fused = run_addcmul(true, Device::cuda(0), dtype, format, shapes);
        expect_same_bits(fused, run_addcmul(false, Device::cuda(0), dtype, format, shapes));
        EXPECT_EQ(differing(fused[0], run_addcmul(true, Device::cpu(), dtype, format, shapes)[0]), 0u);
      }
    }
  }
}

// cuDNN's backward algorithms may sum in another order on each call (atomics), so the gradients match to
// rounding; the forward is one convolution of the same product.
TEST(FusedChannelGateConvCuda, IsTheGateAndTheConvolution) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  for (DType dtype : {kFloat32, kBFloat16}) {
    for (MemoryFormat format : kFormats) {
      for (bool projection : {true, false}) {
        SCOPED_TRACE(name_of(dtype, format) + (projection ? ", 1x1 projection" : ", 3x3 stride 2 groups 2"));
        const Results fused = run_gate_conv(true, Device::cuda(0), dtype, format, projection);
        const Results pair = run_gate_conv(false, Device::cuda(0), dtype, format, projection);
        EXPECT_EQ(differing(fused[0], pair[0]), 0u);  // one convolution (cached algorithm) of the same product
        for (size_t i = 1; i < fused.size(); ++i) {
          EXPECT_LT(relative_error(fused[i], pair[i]), dtype == kFloat32 ? 1e-5 : 0x1p-7) << "result " << i;
        }
      }
    }
  }
}

TEST(FusedEfficientNetCuda, StepMatchesTheCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const StepResult cpu = train_step(Device::cpu(), reduced_b0(), std::nullopt);
  for (bool channels_last : {false, true}) {
    SCOPED_TRACE(channels_last ? "channels-last" : "row-major");
    EfficientNetOptions options = reduced_b0(channels_last);
    options.fused = true;
    const StepResult fp32 = train_step(Device::cuda(0), options, std::nullopt);
    EXPECT_LT(relative_error(fp32.logits, cpu.logits), 1e-4);
    EXPECT_LT(relative_error(fp32.grads, cpu.grads), 1e-3);
    const StepResult bf16 = train_step(Device::cuda(0), options, kBFloat16);
    EXPECT_LT(relative_error(bf16.logits, cpu.logits), 50 * 0x1p-7 / 2);  // as for the unfused model
    EXPECT_LT(relative_error(bf16.grads, cpu.grads), 50 * 0x1p-7 / 2);
  }
}

}  // namespace
}  // namespace effnet
