// The convolutions CUDA runs outside cuDNN (tensor/cuda/conv.cpp routes them): effnet's own depthwise
// kernels (tensor/depthwise_math.h, tensor/cuda/depthwise_conv.cu) and 1x1 convolutions as cuBLAS GEMMs
// (tensor/cuda/pointwise_conv.cpp).
// On the CPU: the per-element depthwise sums the CUDA kernels call, over every element of several
// geometries in both layouts, against conv2d and its gradients in float64 (their index arithmetic is the
// part a GPU is not needed to check). On a GPU: both paths against the CPU in every dtype and layout,
// against cuDNN's in float32, the depthwise weight gradient split over many blocks, and what each path
// leaves to cuDNN.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tensor/depthwise_math.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/model_step.h"
#include "tests/test_util.h"

#if defined(EFFNET_WITH_CUDA)
#include "tensor/cuda/kernels.h"
#endif

namespace effnet {
namespace {

using test::relative_error;

struct Case {
  Shape x;  // [N, C, H, W]
  int64_t k;
  Conv2dGeometry g;
};

// EfficientNet's depthwise convolutions (3x3 and 5x5, stride 1 and 2, "same" padding), and the edges: no
// padding, a dilation, a stride larger than the filter's reach, images narrower than the filter.
const Case kCases[] = {
    {{2, 5, 7, 9}, 3, {.pad_h = 1, .pad_w = 1, .groups = 5}},
    {{2, 5, 9, 8}, 5, {.stride_h = 2, .stride_w = 2, .pad_h = 2, .pad_w = 2, .groups = 5}},
    {{1, 3, 8, 8}, 3, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 3}},
    {{3, 4, 6, 7}, 5, {.groups = 4}},
    {{2, 3, 9, 9}, 3, {.stride_h = 1, .stride_w = 2, .pad_h = 2, .pad_w = 0, .dilation_h = 2, .dilation_w = 1,
                       .groups = 3}},
    {{1, 2, 7, 7}, 3, {.stride_h = 3, .stride_w = 3, .groups = 2}},
    {{2, 3, 2, 3}, 5, {.pad_h = 2, .pad_w = 2, .groups = 3}},
};

std::string describe(const Case& c, MemoryFormat format) {
  return "x " + shape_str(c.x) + " filter " + std::to_string(c.k) + " stride " + std::to_string(c.g.stride_h) + "x" +
         std::to_string(c.g.stride_w) + " pad " + std::to_string(c.g.pad_h) + "x" + std::to_string(c.g.pad_w) +
         " dilation " + std::to_string(c.g.dilation_h) + "x" + std::to_string(c.g.dilation_w) +
         (format == MemoryFormat::ChannelsLast ? " channels-last" : " row-major");
}

Shape output_shape(const Case& c) {
  return {c.x[0], c.x[1], conv_output_size(c.x[2], c.k, c.g.stride_h, c.g.pad_h, c.g.dilation_h),
          conv_output_size(c.x[3], c.k, c.g.stride_w, c.g.pad_w, c.g.dilation_w)};
}

// y, grad_x and grad_w of conv2d on `device` for an upstream gradient, in float32 / float64 vectors.
struct Results {
  std::vector<double> y, grad_x, grad_w;
};

Results conv2d_results(const Tensor& x_cpu, const Tensor& w_cpu, const Tensor& upstream_cpu, const Conv2dGeometry& g,
                       Device device, DType dtype, MemoryFormat format) {
  Tensor x = x_cpu.to(dtype).to(device).contiguous(format).requires_grad_();
  Tensor w = w_cpu.to(dtype).to(device).requires_grad_();
  const Tensor y = conv2d(x, w, Tensor(), g);
  sum(mul(y, upstream_cpu.to(dtype).to(device))).backward();
  const DType wide = dtype == kFloat64 ? kFloat64 : kFloat32;
  return {y.to(wide).to_vector(), x.grad().to(wide).to_vector(), w.grad().to(wide).to_vector()};
}

template <int K>
void check_sums(const Case& c, MemoryFormat format) {
  manual_seed(3);
  const TensorOptions f64(kFloat64);
  const Tensor x = randn(c.x, f64), w = randn({c.x[1], 1, c.k, c.k}, f64);
  const Shape y_shape = output_shape(c);
  const Tensor upstream = randn(y_shape, f64);
  const Results want = conv2d_results(x, w, upstream, c.g, Device::cpu(), kFloat64, MemoryFormat::Contiguous);

  // The operands as the kernels see them: dense in `format`.
  const Tensor xd = x.contiguous(format), dyd = upstream.contiguous(format);
  const double* xp = static_cast<const double*>(xd.data_ptr());
  const double* dyp = static_cast<const double*>(dyd.data_ptr());
  // The filter as stored ([C, R S]) for row-major operands, taps-major ([R S, C]) for channels-last ones,
  // as the CUDA kernels read it.
  const bool channels_last = format == MemoryFormat::ChannelsLast;
  const Tensor taps_major = w.reshape({c.x[1], c.k * c.k}).transpose(0, 1).contiguous();
  const DepthwiseFilter<double> filter =
      channels_last ? DepthwiseFilter<double>{static_cast<const double*>(taps_major.data_ptr()), 1, c.x[1]}
                    : DepthwiseFilter<double>{static_cast<const double*>(w.data_ptr()), c.k * c.k, 1};
  const DepthwiseGeometry g{.n = c.x[0], .c = c.x[1], .h = c.x[2], .w = c.x[3], .p = y_shape[2], .q = y_shape[3],
                            .stride_h = c.g.stride_h, .stride_w = c.g.stride_w, .pad_h = c.g.pad_h,
                            .pad_w = c.g.pad_w, .dilation_h = c.g.dilation_h, .dilation_w = c.g.dilation_w,
                            .channels_last = channels_last};
  // Results in row-major order, as to_vector gives them.
  std::vector<double> y, grad_x, grad_w(static_cast<size_t>(g.c * K * K), 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t ch = 0; ch < g.c; ++ch)
      for (int p = 0; p < g.p; ++p)
        for (int q = 0; q < g.q; ++q) {
          y.push_back(depthwise_output<K, K, double>(g, xp, filter, n, ch, p, q));
          depthwise_weight_grad_add<K, K, double>(g, dyp, xp, n, ch, p, q, grad_w.data() + ch * K * K);
        }
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t ch = 0; ch < g.c; ++ch)
      for (int i = 0; i < g.h; ++i)
        for (int j = 0; j < g.w; ++j) grad_x.push_back(depthwise_input_grad<K, K, double>(g, dyp, filter, n, ch, i, j));
  EXPECT_LT(relative_error(y, want.y), 1e-14) << "output";
  EXPECT_LT(relative_error(grad_x, want.grad_x), 1e-14) << "input gradient";
  EXPECT_LT(relative_error(grad_w, want.grad_w), 1e-14) << "weight gradient";
}

TEST(DepthwiseMath, SumsEqualConv2dOnEveryElement) {
  for (const Case& c : kCases) {
    for (MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
      SCOPED_TRACE(describe(c, format));
      if (c.k == 3) check_sums<3>(c, format);
      else check_sums<5>(c, format);
    }
  }
}

#if defined(EFFNET_WITH_CUDA)

// Runs with the kernels outside cuDNN on (whatever EFFNET_CUDNN_ONLY says) and restores the setting.
class ConvKernelsCuda : public testing::Test {
 protected:
  void SetUp() override {
    EFFNET_REQUIRE_CUDA_OR_SKIP();
    own_ = cuda::own_conv_kernels();
    cuda::set_own_conv_kernels(true);
  }
  void TearDown() override { cuda::set_own_conv_kernels(own_); }

 private:
  bool own_ = true;
};
using DepthwiseCuda = ConvKernelsCuda;
using PointwiseCuda = ConvKernelsCuda;

// Against float64 sums of the same rounded inputs: float32 sums of up to a few thousand products, or one
// rounding of each result to 16 bits (unit roundoff 2^-11 for float16, 2^-8 for bfloat16), with room of
// about 2 for the sums in float32 before it.
double tolerance(DType dtype) {
  if (dtype == kFloat64) return 1e-13;
  if (dtype == kFloat32) return 1e-5;
  return dtype == kFloat16 ? 1e-3 : 8e-3;
}

void expect_close(const Results& got, const Results& want, double tol) {
  EXPECT_LT(relative_error(got.y, want.y), tol) << "output";
  EXPECT_LT(relative_error(got.grad_x, want.grad_x), tol) << "input gradient";
  EXPECT_LT(relative_error(got.grad_w, want.grad_w), tol) << "weight gradient";
}

// The GPU's convolution of x, w (and upstream gradient) rounded to `dtype`, in `format`, against the CPU's
// float64 sums of the same rounded values.
void expect_gpu_matches_cpu(const Tensor& x, const Tensor& w, const Tensor& upstream, const Conv2dGeometry& g,
                            DType dtype, MemoryFormat format) {
  const Tensor xr = x.to(dtype).to(kFloat64), wr = w.to(dtype).to(kFloat64), ur = upstream.to(dtype).to(kFloat64);
  const Results want = conv2d_results(xr, wr, ur, g, Device::cpu(), kFloat64, MemoryFormat::Contiguous);
  expect_close(conv2d_results(xr, wr, ur, g, Device::cuda(0), dtype, format), want, tolerance(dtype));
}

// The same convolution through cuDNN and through the kernels outside it, in float32.
void expect_matches_cudnn(const Tensor& x, const Tensor& w, const Tensor& upstream, const Conv2dGeometry& g,
                          MemoryFormat format) {
  cuda::set_own_conv_kernels(false);
  const Results cudnn = conv2d_results(x, w, upstream, g, Device::cuda(0), kFloat32, format);
  cuda::set_own_conv_kernels(true);
  expect_close(conv2d_results(x, w, upstream, g, Device::cuda(0), kFloat32, format), cudnn, 1e-5);
}

TEST_F(DepthwiseCuda, OwnKernelsMatchTheCpu) {
  for (const Case& c : kCases) {
    manual_seed(4);
    const Tensor x = randn(c.x), w = randn({c.x[1], 1, c.k, c.k}), upstream = randn(output_shape(c));
    const Tensor y_probe = empty(output_shape(c), TensorOptions(kFloat32, Device::cuda(0)));
    EXPECT_TRUE(cuda::depthwise_conv_supported(x.to(Device::cuda(0)), w.to(Device::cuda(0)), y_probe, c.g));
    for (DType dtype : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
      for (MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        SCOPED_TRACE(describe(c, format) + " " + dtype_name(dtype));
        expect_gpu_matches_cpu(x, w, upstream, c.g, dtype, format);
      }
    }
  }
}

// In float32 both are full float32 sums of the same products: cuDNN's kernels and effnet's agree to
// rounding.
TEST_F(DepthwiseCuda, OwnKernelsMatchCudnns) {
  for (const Case& c : kCases) {
    manual_seed(5);
    const Tensor x = randn(c.x), w = randn({c.x[1], 1, c.k, c.k}), upstream = randn(output_shape(c));
    for (MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
      SCOPED_TRACE(describe(c, format));
      expect_matches_cudnn(x, w, upstream, c.g, format);
    }
  }
}

// The GPU against the CPU on one geometry, in float32 and bfloat16 (the fast path's dtype), both layouts.
void expect_large_case_matches_cpu(const Case& c) {
  manual_seed(6);
  const Tensor x = randn(c.x), w = randn({c.x[1], 1, c.k, c.k}), upstream = randn(output_shape(c));
  for (DType dtype : {kFloat32, kBFloat16}) {
    for (MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
      SCOPED_TRACE(describe(c, format) + " " + dtype_name(dtype));
      expect_gpu_matches_cpu(x, w, upstream, c.g, dtype, format);
    }
  }
}

// Many pixels per channel, so that the weight gradient is split over many blocks in both layouts, with a
// shorter last split (its partial sums added in a second kernel); 40 channels (a partial tile of 32 in NHWC).
TEST_F(DepthwiseCuda, LargeImagesSplitTheWeightGradient) {
  expect_large_case_matches_cpu({{4, 40, 48, 48}, 5, {.stride_h = 2, .stride_w = 2, .pad_h = 2, .pad_w = 2, .groups = 40}});
}

// B4's first stage at 380x380: over a million elements per image, walked with a grid-stride loop. (Left
// out of device_check.sh's memcheck run, as the other whole-model-sized tests are: too slow there.)
TEST_F(DepthwiseCuda, B4FirstStageImages) {
  expect_large_case_matches_cpu({{2, 32, 190, 190}, 3, {.pad_h = 1, .pad_w = 1, .groups = 32}});
}

// What the kernels do not take goes to cuDNN: other filter sizes, channel multipliers, grouped
// convolutions.
TEST_F(DepthwiseCuda, OtherConvolutionsAreLeftToCudnn) {
  const Device gpu = Device::cuda(0);
  const TensorOptions options(kFloat32, gpu);
  const Tensor x = empty({2, 4, 8, 8}, options), y = empty({2, 4, 8, 8}, options), y8 = empty({2, 8, 8, 8}, options);
  Conv2dGeometry depthwise{.pad_h = 1, .pad_w = 1, .groups = 4};
  EXPECT_TRUE(cuda::depthwise_conv_supported(x, empty({4, 1, 3, 3}, options), y, depthwise));
  EXPECT_FALSE(cuda::depthwise_conv_supported(x, empty({4, 1, 1, 1}, options), y, {.groups = 4}));
  EXPECT_FALSE(cuda::depthwise_conv_supported(x, empty({8, 1, 3, 3}, options), y8, depthwise));  // multiplier 2
  Conv2dGeometry grouped{.pad_h = 1, .pad_w = 1, .groups = 2};
  EXPECT_FALSE(cuda::depthwise_conv_supported(x, empty({4, 2, 3, 3}, options), y, grouped));
  Conv2dGeometry seven{.pad_h = 3, .pad_w = 3, .groups = 4};
  EXPECT_FALSE(cuda::depthwise_conv_supported(x, empty({4, 1, 7, 7}, options), y, seven));
}

// 1x1 convolutions: channels-last images, and squeeze-excite's one-pixel images in both layouts.
struct PointwiseCase {
  Shape x, w;
  MemoryFormat format;
};
const PointwiseCase kPointwiseCases[] = {
    {{3, 24, 7, 9}, {40, 24, 1, 1}, MemoryFormat::ChannelsLast},
    {{2, 40, 5, 4}, {24, 40, 1, 1}, MemoryFormat::ChannelsLast},
    {{8, 96, 1, 1}, {12, 96, 1, 1}, MemoryFormat::Contiguous},
    {{8, 12, 1, 1}, {96, 12, 1, 1}, MemoryFormat::Contiguous},
    {{5, 7, 1, 1}, {3, 7, 1, 1}, MemoryFormat::ChannelsLast},
};

std::string describe(const PointwiseCase& c) {
  return "x " + shape_str(c.x) + " w " + shape_str(c.w) +
         (c.format == MemoryFormat::ChannelsLast ? " channels-last" : " row-major");
}

TEST_F(PointwiseCuda, CublasMatchesTheCpu) {
  for (const PointwiseCase& c : kPointwiseCases) {
    manual_seed(7);
    const Tensor x = randn(c.x), w = randn(c.w), upstream = randn({c.x[0], c.w[0], c.x[2], c.x[3]});
    const Tensor xg = x.to(Device::cuda(0)).contiguous(c.format), wg = w.to(Device::cuda(0));
    EXPECT_TRUE(cuda::pointwise_conv_supported(xg, wg, upstream.to(Device::cuda(0)).contiguous(c.format), {}))
        << describe(c);
    for (DType dtype : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
      SCOPED_TRACE(describe(c) + " " + dtype_name(dtype));
      expect_gpu_matches_cpu(x, w, upstream, {}, dtype, c.format);
    }
  }
}

TEST_F(PointwiseCuda, CublasMatchesCudnn) {
  for (const PointwiseCase& c : kPointwiseCases) {
    SCOPED_TRACE(describe(c));
    manual_seed(8);
    const Tensor x = randn(c.x), w = randn(c.w), upstream = randn({c.x[0], c.w[0], c.x[2], c.x[3]});
    expect_matches_cudnn(x, w, upstream, {}, c.format);
  }
}

TEST_F(PointwiseCuda, OtherConvolutionsAreLeftToCudnn) {
  const TensorOptions options(kFloat32, Device::cuda(0));
  const MemoryFormat cl = MemoryFormat::ChannelsLast;
  const Tensor x = empty({2, 8, 6, 6}, options, cl), w = empty({4, 8, 1, 1}, options), y = empty({2, 4, 6, 6}, options, cl);
  EXPECT_TRUE(cuda::pointwise_conv_supported(x, w, y, {}));
  EXPECT_FALSE(cuda::pointwise_conv_supported(empty({2, 8, 6, 6}, options), w, empty({2, 4, 6, 6}, options), {}))
      << "row-major images of several pixels: cuDNN";
  EXPECT_FALSE(cuda::pointwise_conv_supported(x, w, empty({2, 4, 3, 3}, options, cl), {.stride_h = 2, .stride_w = 2}));
  EXPECT_FALSE(cuda::pointwise_conv_supported(x, w, empty({2, 4, 8, 8}, options, cl), {.pad_h = 1, .pad_w = 1}));
  EXPECT_FALSE(cuda::pointwise_conv_supported(x, empty({4, 4, 1, 1}, options), y, {.groups = 2}));
  EXPECT_FALSE(cuda::pointwise_conv_supported(x, empty({4, 8, 3, 3}, options), empty({2, 4, 4, 4}, options, cl), {}));
}

#endif  // EFFNET_WITH_CUDA

}  // namespace
}  // namespace effnet
