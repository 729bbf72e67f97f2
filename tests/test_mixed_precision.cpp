// Mixed precision (tensor/autocast.h): 16-bit kernels compute in float32 and round once, 16-bit sums
// accumulate in float32, convolution and batch norm take 16-bit activations with float32 parameters,
// autocast casts a convolution's operands on the tape, and an EfficientNet training step in bfloat16 or
// float16 stays within 16-bit rounding of the float32 step — on the CPU, and on CUDA against the CPU.
// Also the TF32 switch (tensor/math_mode.h) and train.precision.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "layers/conv2d.h"
#include "optim/loss_scaler.h"
#include "optim/sgd.h"
#include "tensor/autocast.h"
#include "tensor/half.h"
#include "tensor/math_mode.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/model_step.h"
#include "tests/test_util.h"
#include "train/config.h"

namespace effnet {
namespace {

using test::relative_error;
using test::StepResult;

const DType kHalfTypes[] = {kBFloat16, kFloat16};

// Relative spacing of the 16-bit type's numbers: 2^-7 (bfloat16) or 2^-10 (float16); one rounding errs by
// half of it at most.
double ulp(DType dtype) { return dtype == kBFloat16 ? 0x1p-7 : 0x1p-10; }

// Random values that are exact in `dtype`, so the 16-bit and the float32 computations start from the
// same numbers.
Tensor exact_randn(const Shape& shape, DType dtype, double scale = 1.0) {
  return mul(randn(shape), scale).to(dtype).to(kFloat32);
}

// Each 16-bit result of the CPU is the float32 result of the widened inputs, rounded once.
TEST(MixedPrecision, ElementwiseOpsComputeInFloat32AndRoundOnce) {
  manual_seed(3);
  for (DType dtype : kHalfTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor a = exact_randn({257}, dtype, 3.0), b = exact_randn({257}, dtype);
    const Tensor a16 = a.to(dtype), b16 = b.to(dtype);
    const std::vector<std::pair<Tensor, Tensor>> cases = {
        {silu(a16), silu(a)},       {sigmoid(a16), sigmoid(a)},     {mul(a16, b16), mul(a, b)},
        {add(a16, b16), add(a, b)}, {div(a16, b16), div(a, b)},     {mul(a16, 0.1), mul(a, 0.1)},
        {exp(a16), exp(a)},         {sub(a16, b16), sub(a, b)},
    };
    for (size_t k = 0; k < cases.size(); ++k) {
      EXPECT_EQ(cases[k].first.dtype(), dtype);
      EXPECT_EQ(cases[k].first.to_vector(), cases[k].second.to(dtype).to_vector()) << "case " << k;
    }
    // Backward products too: silu's gradient (one fused SiluGrad kernel) in the 16-bit dtype.
    const Tensor leaf = a16.detach().requires_grad_(), leaf32 = a.detach().requires_grad_();
    sum(silu(leaf)).backward();
    sum(silu(leaf32)).backward();
    EXPECT_EQ(leaf.grad().dtype(), dtype);
    EXPECT_EQ(leaf.grad().to_vector(), leaf32.grad().to(dtype).to_vector());
  }
}

// 4096 ones: a 16-bit accumulator would stop at 256 (bfloat16) or 2048 (float16).
TEST(MixedPrecision, SumsAccumulateInFloat32) {
  for (const Device& device : test::test_devices()) {
    for (DType dtype : kHalfTypes) {
      SCOPED_TRACE(device.str() + " " + dtype_name(dtype));
      const Tensor x = full({4, 1024}, 1.0, TensorOptions(dtype, device));
      EXPECT_EQ(sum(x).item(), 4096.0);
      EXPECT_EQ(sum(x, {1}).to_vector(), std::vector<double>(4, 1024.0));
      EXPECT_EQ(mean(x, {0, 1}).item(), 1.0);
    }
  }
}

// A mean divides the float32 sum before rounding: 200 x 200 threes sum to 120,000, past float16's 65504.
TEST(MixedPrecision, MeanOfALargeFloat16PlaneDoesNotOverflow) {
  for (const Device& device : test::test_devices()) {
    SCOPED_TRACE(device.str());
    const Tensor x = full({1, 2, 200, 200}, 3.0, TensorOptions(kFloat16, device)).requires_grad_();
    const Tensor m = mean(x, {2, 3}, true);
    EXPECT_EQ(m.dtype(), kFloat16);
    EXPECT_EQ(m.to_vector(), (std::vector<double>{3, 3}));
    sum(m).backward();
    EXPECT_EQ(x.grad().dtype(), kFloat16);
    EXPECT_EQ(x.grad().to_vector()[0], static_cast<double>(float16_bits_to_float(float_to_float16_bits(1.0f / 40000))));
  }
}

TEST(MixedPrecision, BatchNormOf16BitInputsWantsFloat32Parameters) {
  const Tensor x = randn({2, 3, 4, 4}).to(kBFloat16), g16 = ones({3}, kBFloat16);
  const std::string error = test::error_of([&] { batch_norm(x, g16, g16, g16, g16, true, 0.1, 1e-5); });
  EXPECT_NE(error.find("batch_norm: a bfloat16 input needs float32 gamma, beta and running statistics"),
            std::string::npos)
      << error;
}

// Convolution and batch norm on 16-bit tensors: the CPU widens, runs the float32 kernel, rounds once.
TEST(MixedPrecision, ConvolutionAndBatchNormRoundTheFloat32Result) {
  manual_seed(4);
  for (DType dtype : kHalfTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x = exact_randn({2, 6, 9, 9}, dtype), w = exact_randn({6, 1, 3, 3}, dtype, 0.3);
    Conv2dGeometry g;
    g.pad_h = g.pad_w = 1;
    g.groups = 6;
    const Tensor y16 = conv2d(x.to(dtype), w.to(dtype), Tensor(), g);
    EXPECT_EQ(y16.dtype(), dtype);
    EXPECT_EQ(y16.to_vector(), conv2d(x, w, Tensor(), g).to(dtype).to_vector());

    const Tensor gamma = randn({6}), beta = randn({6});
    Tensor rm16 = zeros({6}), rv16 = ones({6}), rm = zeros({6}), rv = ones({6});
    const Tensor bn16 = batch_norm(x.to(dtype), gamma, beta, rm16, rv16, true, 0.1, 1e-5);
    const Tensor bn = batch_norm(x, gamma, beta, rm, rv, true, 0.1, 1e-5);
    EXPECT_EQ(bn16.dtype(), dtype);
    EXPECT_EQ(bn16.to_vector(), bn.to(dtype).to_vector());
    EXPECT_EQ(rm16.dtype(), kFloat32);  // statistics stay float32, and equal (the input is exact)
    EXPECT_EQ(rm16.to_vector(), rm.to_vector());
    EXPECT_EQ(rv16.to_vector(), rv.to_vector());
    // Eval mode casts the float32 scale and shift to the input's dtype.
    EXPECT_EQ(batch_norm(x.to(dtype), gamma, beta, rm, rv, false, 0.1, 1e-5).dtype(), dtype);
  }
}

TEST(MixedPrecision, AutocastCastsConvolutionOperandsOnTheTape) {
  manual_seed(5);
  Conv2d conv(Conv2dOptions(4, 8, 3));
  const Tensor x = randn({2, 4, 8, 8});
  EXPECT_FALSE(autocast_dtype().has_value());
  Tensor y16;
  {
    AutocastGuard amp(kBFloat16);
    EXPECT_EQ(autocast_dtype(), kBFloat16);
    {
      AutocastGuard off(std::nullopt);  // nests: off inside, restored after
      EXPECT_FALSE(autocast_dtype().has_value());
      EXPECT_EQ(conv.forward(x).dtype(), kFloat32);
    }
    y16 = conv.forward(x);
  }
  EXPECT_FALSE(autocast_dtype().has_value());
  EXPECT_EQ(y16.dtype(), kBFloat16);
  sum(y16).backward();
  const Tensor grad16 = conv.weight.grad();
  EXPECT_EQ(grad16.dtype(), kFloat32);  // the float32 master weight gets a float32 gradient
  conv.zero_grad();
  sum(conv.forward(x)).backward();
  // The weight's gradient sums 2 x 8 x 8 products of bfloat16-rounded inputs: within a few roundings.
  EXPECT_LT(relative_error(grad16.to_vector(), conv.weight.grad().to_vector()), 4 * ulp(kBFloat16));
  EXPECT_NE(grad16.to_vector(), conv.weight.grad().to_vector());  // it did run in bfloat16
  const std::string error = test::error_of([] { AutocastGuard bad(kFloat64); });
  EXPECT_NE(error.find("AutocastGuard: autocast computes in float16 or bfloat16, not float64"), std::string::npos)
      << error;
}

// One training step of the reduced B0 (tests/model_step.h).
StepResult train_step(const Device& device, std::optional<DType> precision) {
  return test::train_step(device, test::reduced_b0(), precision);
}

// The bound for a whole network: each 16-bit rounding errs by up to ulp / 2, and about fifty of them lie
// between the input and the logits (the reduced B0's convolutions, batch norms, activations and gates);
// batch norm renormalizes, so they do not compound. (Measured on the CPU: bfloat16 3.2e-2 logits, 9.9e-2
// gradients; float16 5.7e-3 and 1.2e-2, about 8 = 2^3 times less, as the spacings are.)
double network_tolerance(DType dtype) { return 50 * ulp(dtype) / 2; }

TEST(MixedPrecision, EfficientNetStepStaysWithin16BitRoundingOfFloat32) {
  const StepResult reference = train_step(Device::cpu(), std::nullopt);
  std::map<DType, double> grad_errors;
  for (DType dtype : kHalfTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const StepResult r = train_step(Device::cpu(), dtype);
    const double logits_error = relative_error(r.logits, reference.logits);
    const double grad_error = relative_error(r.grads, reference.grads);
    std::printf("%s on cpu: logits %.2e, gradients %.2e relative to float32\n", dtype_name(dtype), logits_error,
                grad_error);
    EXPECT_LT(logits_error, network_tolerance(dtype));
    EXPECT_LT(grad_error, network_tolerance(dtype));
    EXPECT_GT(logits_error, 0.0);  // it did run in 16 bits
    EXPECT_NEAR(r.loss, reference.loss, network_tolerance(dtype) * std::abs(reference.loss));
    grad_errors[dtype] = grad_error;
  }
  // Rounding, not a wrong kernel: the error follows the spacing, 8 times finer in float16.
  const double ratio = grad_errors[kBFloat16] / grad_errors[kFloat16];
  EXPECT_GT(ratio, 3.0);
  EXPECT_LT(ratio, 20.0);
}

TEST(MixedPrecision, Float16TrainingWithLossScalingSkipsOverflowingSteps) {
  manual_seed(9);
  Conv2d conv(Conv2dOptions(3, 4, 3));
  SGD optimizer({ParamGroup{conv.named_parameters()}}, SGDOptions{.lr = 0.1});
  DynamicLossScaler scaler(LossScalerOptions{.init_scale = 1e6});
  const Tensor x = randn({2, 3, 8, 8});
  const std::vector<double> before = conv.weight.to_vector();
  auto step = [&](double factor) {
    Tensor loss;
    {
      AutocastGuard amp(kFloat16);
      loss = mul(sum(conv.forward(x).to(kFloat32)), factor);  // the loss in float32, as a model's
    }
    scaler.scale(loss).backward();
    const bool stepped = scaler.step(optimizer);
    scaler.update();
    optimizer.zero_grad();
    return stepped;
  };
  // The gradient reaching the float16 convolution output is scale x factor: 1e6 overflows float16
  // (> 65504), so the step is skipped and the scale halved.
  EXPECT_FALSE(step(1.0));
  EXPECT_EQ(conv.weight.to_vector(), before);
  EXPECT_EQ(scaler.current_scale(), 5e5);
  // 5e5 x 1e-6 does not.
  EXPECT_TRUE(step(1e-6));
  EXPECT_NE(conv.weight.to_vector(), before);
}

TEST(MixedPrecision, PrecisionOptionParses) {
  EXPECT_FALSE(train::parse_precision("fp32", "train.precision").has_value());
  EXPECT_EQ(train::parse_precision("bf16", "train.precision"), kBFloat16);
  EXPECT_EQ(train::parse_precision("fp16", "train.precision"), kFloat16);
  const std::string error = test::error_of([] { train::parse_precision("fp8", "--precision"); });
  EXPECT_NE(error.find("--precision: expected fp32, bf16 or fp16, got 'fp8'"), std::string::npos) << error;
  EXPECT_FALSE(allow_tf32());  // off unless asked for
  set_allow_tf32(true);
  EXPECT_TRUE(allow_tf32());
  set_allow_tf32(false);
}

// ---- CUDA: the 16-bit kernels against the CPU's

// |a - b| within `ulps` of the 16-bit spacing at a, plus `floor`.
void expect_close(const Tensor& gpu, const Tensor& cpu, double ulps, double floor, const std::string& what) {
  ASSERT_EQ(gpu.dtype(), cpu.dtype()) << what;
  ASSERT_EQ(gpu.shape(), cpu.shape()) << what;
  const std::vector<double> a = gpu.to_vector(), b = cpu.to_vector();
  const double spacing = cpu.dtype() == kFloat32 ? 0x1p-23 : ulp(cpu.dtype());
  int reported = 0;
  for (size_t i = 0; i < a.size() && reported < 5; ++i) {
    if (!(std::abs(a[i] - b[i]) <= ulps * spacing * std::abs(b[i]) + floor)) {
      ADD_FAILURE() << what << " [" << i << "]: cuda " << a[i] << ", cpu " << b[i];
      ++reported;
    }
  }
}

// One 16-bit batch-norm training step, forward and backward, on the GPU against the CPU.
void check_batch_norm(const Device& gpu, DType dtype, const Shape& shape, MemoryFormat format) {
  const int64_t c = shape[1];
  const Tensor xb = add(mul(randn(shape), 2.0), 50.0).to(dtype).contiguous(format);
  const Tensor gamma = randn({c}), beta = randn({c});
  Tensor rm_c = zeros({c}), rv_c = ones({c}), rm_g = zeros({c}, TensorOptions(kFloat32, gpu)),
         rv_g = ones({c}, TensorOptions(kFloat32, gpu));
  const Tensor xc = xb.detach().requires_grad_(), xg = xb.to(gpu).contiguous(format).detach().requires_grad_();
  const Tensor gc = gamma.detach().requires_grad_(), gg = gamma.to(gpu).detach().requires_grad_();
  const Tensor bc = beta.detach().requires_grad_(), bg = beta.to(gpu).detach().requires_grad_();
  const Tensor yc = batch_norm(xc, gc, bc, rm_c, rv_c, true, 0.1, 1e-5);
  const Tensor yg = batch_norm(xg, gg, bg, rm_g, rv_g, true, 0.1, 1e-5);
  EXPECT_EQ(yg.suggest_memory_format(), format);
  // y is O(1) while x is near 50: the float32 mean differs from the double one by ~1e-6, which moves y
  // by ~1e-6 before the rounding; and z = x scale + shift with both terms near 60 is one fma on the GPU
  // (shift rounded to float32) but a rounded product and sum on the CPU, up to ~2e-5 apart.
  expect_close(yg.cpu(), yc, 1, 3e-5, "batch norm y");
  expect_close(rm_g.cpu(), rm_c, 16, 0, "running mean");
  expect_close(rv_g.cpu(), rv_c, 2e3, 0, "running var");  // float32 sums of squares: ~1e-4 relative
  const Tensor upstream = randn(shape).to(dtype);
  sum(mul(yc, upstream)).backward();
  sum(mul(yg, upstream.to(gpu))).backward();
  // The sums over up to 17,424 values per channel: float32 on the GPU, double on the CPU.
  expect_close(xg.grad().cpu(), xc.grad(), 1, 1e-3, "batch norm grad x");
  expect_close(gg.grad().cpu(), gc.grad(), 2e3, 1e-2, "batch norm grad gamma");
  expect_close(bg.grad().cpu(), bc.grad(), 2e3, 1e-2, "batch norm grad beta");
}

TEST(MixedPrecisionCuda, KernelsMatchTheCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const Device gpu = Device::cuda(0);
  manual_seed(10);
  for (DType dtype : kHalfTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    // Elementwise: the same float32 math and one rounding; CUDA's expf may differ from glibc's by an ulp
    // of float32, which can move a rounding by one 16-bit step.
    const Tensor a = randn({3, 1000}).to(dtype), b = randn({3, 1000}).to(dtype);
    expect_close(silu(a.to(gpu)).cpu(), silu(a), 1, 0, "silu");
    expect_close(sigmoid(a.to(gpu)).cpu(), sigmoid(a), 1, 0, "sigmoid");
    expect_close(mul(a.to(gpu), b.to(gpu)).cpu(), mul(a, b), 0, 0, "mul");
    expect_close(add(a.to(gpu), b.to(gpu)).cpu(), add(a, b), 0, 0, "add");
    // Sums: float32 on the GPU, double on the CPU, one rounding each.
    expect_close(sum(a.to(gpu), {1}).cpu(), sum(a, {1}), 1, 1e-3, "sum");
    expect_close(mean(a.to(gpu), {0}).cpu(), mean(a, {0}), 1, 1e-3, "mean");

    // Convolution: cuDNN accumulates in float32 in its own order; the rounded outputs differ by at most
    // a step where the float32 sums straddle a rounding boundary.
    const Tensor x = randn({4, 16, 19, 19}).to(dtype), w = mul(randn({32, 16, 3, 3}), 0.1).to(dtype);
    const Tensor dw_w = mul(randn({16, 1, 5, 5}), 0.2).to(dtype);
    Conv2dGeometry g;
    g.pad_h = g.pad_w = 1;
    Conv2dGeometry dw;
    dw.pad_h = dw.pad_w = 2;
    dw.stride_h = dw.stride_w = 2;
    dw.groups = 16;
    const Tensor y_cpu = conv2d(x, w, Tensor(), g), y_gpu = conv2d(x.to(gpu), w.to(gpu), Tensor(), g).cpu();
    expect_close(y_gpu, y_cpu, 1, 1e-3, "conv 3x3");
    expect_close(conv2d(x.to(gpu), dw_w.to(gpu), Tensor(), dw).cpu(), conv2d(x, dw_w, Tensor(), dw), 1, 1e-3,
                 "depthwise 5x5 stride 2");
    const Backend& cpu_k = backend(Device::cpu()), &gpu_k = backend(gpu);
    const Tensor dy = randn(y_cpu.shape()).to(dtype);
    Tensor dx_cpu = empty_like(x), dx_gpu = empty(x.shape(), TensorOptions(dtype, gpu));
    cpu_k.conv2d_backward_input(dy, w, g, dx_cpu);
    gpu_k.conv2d_backward_input(dy.to(gpu), w.to(gpu), g, dx_gpu);
    expect_close(dx_gpu.cpu(), dx_cpu, 1, 1e-2, "conv backward input");
    Tensor dw_cpu = empty_like(w), dw_gpu = empty(w.shape(), TensorOptions(dtype, gpu));
    cpu_k.conv2d_backward_weight(dy, x, g, dw_cpu);
    gpu_k.conv2d_backward_weight(dy.to(gpu), x.to(gpu), g, dw_gpu);
    // 4 x 19 x 19 products per weight: the sum's size is about 40, so the floor is float32 accumulation.
    expect_close(dw_gpu.cpu(), dw_cpu, 1, 0.1, "conv backward weight");
  }
}

TEST(MixedPrecisionCuda, EfficientNetStepStaysWithin16BitRoundingOfFloat32) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const StepResult reference = train_step(Device::cpu(), std::nullopt);
  for (DType dtype : kHalfTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const StepResult r = train_step(Device::cuda(0), dtype);
    const double logits_error = relative_error(r.logits, reference.logits);
    const double grad_error = relative_error(r.grads, reference.grads);
    std::printf("%s on cuda: logits %.2e, gradients %.2e relative to float32 on the cpu\n", dtype_name(dtype),
                logits_error, grad_error);
    EXPECT_LT(logits_error, network_tolerance(dtype));
    EXPECT_LT(grad_error, network_tolerance(dtype));
  }
}

TEST(MixedPrecisionCuda, Tf32ConvolutionStaysWithinTf32Rounding) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  manual_seed(11);
  const Tensor x = randn({8, 64, 24, 24}), w = mul(randn({128, 64, 1, 1}), 0.1);
  const Tensor reference = conv2d(x, w, Tensor(), Conv2dGeometry{});
  set_allow_tf32(true);
  const Tensor tf32 = conv2d(x.cuda(), w.cuda(), Tensor(), Conv2dGeometry{}).cpu();
  const Tensor m = matmul(x.view({8, 64 * 24 * 24}).slice(1, 0, 64).cuda(), w.view({128, 64}).transpose(0, 1).cuda());
  set_allow_tf32(false);
  const Tensor m_ref = matmul(x.view({8, 64 * 24 * 24}).slice(1, 0, 64), w.view({128, 64}).transpose(0, 1));
  // TF32 keeps 10 mantissa bits of each input: about 2^-11 relative per product.
  EXPECT_LT(relative_error(tf32.to_vector(), reference.to_vector()), 0x1p-9);
  EXPECT_LT(relative_error(m.cpu().to_vector(), m_ref.to_vector()), 0x1p-9);
  // Off again: full float32.
  EXPECT_LT(relative_error(conv2d(x.cuda(), w.cuda(), Tensor(), Conv2dGeometry{}).cpu().to_vector(),
                           reference.to_vector()),
            1e-6);
}

// effnet's 16-bit batch norm against the CPU's float32 path on the same 16-bit input, in both layouts: a
// mean far from zero must not cancel the variance; the second shape has 40 channels (a partial 32-channel
// tile in NHWC) and enough values per channel for several splits in both layouts.
TEST(MixedPrecisionCuda, BatchNormMatchesTheCpu) {
  EFFNET_REQUIRE_CUDA_OR_SKIP();
  const Device gpu = Device::cuda(0);
  manual_seed(12);
  for (DType dtype : kHalfTypes) {
    for (const Shape& shape : {Shape{8, 12, 7, 7}, Shape{16, 40, 33, 33}}) {
      for (MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) +
                     (format == MemoryFormat::ChannelsLast ? " channels-last" : " row-major"));
        check_batch_norm(gpu, dtype, shape, format);
      }
    }
  }
}

}  // namespace
}  // namespace effnet
