// A batch too large for one cuDNN call or one 32-bit-indexed kernel launch (an operand of 2^31 elements or
// more: EfficientNet-B4 at 380x380 past about 410 images) runs in chunks of whole images
// (tensor/cuda/conv.cpp, tensor/cuda/batch_norm_kernels.cu). Lowering the limit
// (cuda::set_max_elements_per_call) sends small tensors down the same path, where the results must be the
// one-call results to rounding; one test runs a real operand of more than 2^31 elements.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "tensor/memory.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/model_step.h"
#include "tests/test_util.h"

#if defined(EFFNET_WITH_CUDA)
#include <cuda_runtime.h>

#include "tensor/cuda/kernels.h"
#endif

namespace effnet {
namespace {

#if defined(EFFNET_WITH_CUDA)

using test::relative_error;

// Restores the default limit after each test. Every convolution takes cuDNN's path here, the one that
// chunks (effnet's own depthwise kernels take a whole batch in one launch up to 2^31 output pixels, and
// cuBLAS's 1x1 products index in 64 bits), and that setting is restored too.
class CudaChunks : public testing::Test {
 protected:
  void SetUp() override {
    EFFNET_REQUIRE_CUDA_OR_SKIP();
    own_ = cuda::own_conv_kernels();
    cuda::set_own_conv_kernels(false);
  }
  void TearDown() override {
    if (!cuda_available()) return;
    cuda::set_max_elements_per_call(0);
    cuda::set_own_conv_kernels(own_);
  }

 private:
  bool own_ = true;
};

const MemoryFormat kFormats[] = {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast};

std::string name_of(DType dtype, MemoryFormat format) {
  return std::string(dtype_name(dtype)) + (format == MemoryFormat::ChannelsLast ? " channels-last" : " row-major");
}

// The relative error one rounding to `dtype` allows, with room for a different cuDNN algorithm per chunk.
double tolerance(DType dtype) { return dtype == kBFloat16 ? 2e-2 : 1e-5; }

struct Results {
  std::vector<std::vector<double>> values;  // outputs, then gradients
};

Results conv_on_gpu(const Tensor& x_cpu, const Tensor& w_cpu, const Tensor& upstream_cpu, const Conv2dGeometry& g,
                    DType dtype, MemoryFormat format) {
  const Device gpu = Device::cuda(0);
  Tensor x = x_cpu.to(dtype).to(gpu).contiguous(format).requires_grad_();
  Tensor w = w_cpu.to(dtype).to(gpu).requires_grad_();
  const Tensor y = conv2d(x, w, Tensor(), g);
  sum(mul(y, upstream_cpu.to(dtype).to(gpu))).backward();
  return {{y.to(kFloat32).to_vector(), x.grad().to(kFloat32).to_vector(), w.grad().to(kFloat32).to_vector()}};
}

// A dense and a depthwise stride-2 convolution; the limit cuts each batch of 7 into chunks of 2 images with
// a shorter last one, and the weight's gradient adds the chunks'. (Every chunk starts 16-byte aligned, as
// EfficientNet's do: its channel counts are multiples of 8.)
TEST_F(CudaChunks, ConvolutionInChunksIsOneCallToRounding) {
  manual_seed(21);
  struct Case {
    Shape x, w;
    Conv2dGeometry g;
    int64_t limit;  // below the whole operands, above one chunk's
  };
  const Case cases[] = {
      {{7, 6, 10, 10}, {8, 6, 3, 3}, {.pad_h = 1, .pad_w = 1}, 2000},                                   // 800 per image
      {{7, 8, 10, 10}, {8, 1, 3, 3}, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 8}, 1800},  // 800
  };
  for (const Case& c : cases) {
    const Tensor x = randn(c.x), w = randn(c.w);
    const Conv2dGeometry& g = c.g;
    const int64_t p = conv_output_size(c.x[2], c.w[2], g.stride_h, g.pad_h, g.dilation_h);
    const int64_t q = conv_output_size(c.x[3], c.w[3], g.stride_w, g.pad_w, g.dilation_w);
    const Tensor upstream = randn({c.x[0], c.w[0], p, q});
    for (DType dtype : {kFloat32, kBFloat16}) {
      for (MemoryFormat format : kFormats) {
        SCOPED_TRACE(name_of(dtype, format) + " weight " + shape_str(c.w));
        cuda::set_max_elements_per_call(0);
        const Results whole = conv_on_gpu(x, w, upstream, g, dtype, format);
        cuda::set_max_elements_per_call(c.limit);
        const Results chunked = conv_on_gpu(x, w, upstream, g, dtype, format);
        const char* names[] = {"output", "input gradient", "weight gradient"};
        for (size_t k = 0; k < 3; ++k) {
          EXPECT_LT(relative_error(chunked.values[k], whole.values[k]), tolerance(dtype)) << names[k];
        }
      }
    }
  }
}

// The limit holds for every call: an image larger than it cannot be chunked, and the error says so. (So the
// test above ran in chunks: one call would have refused its whole operands.)
TEST_F(CudaChunks, AnImageLargerThanTheLimitIsAnError) {
  const Tensor x = randn({3, 6, 10, 10}).to(Device::cuda(0)), w = randn({8, 6, 3, 3}).to(Device::cuda(0));
  cuda::set_max_elements_per_call(500);  // an image: 600 input, 512 output elements
  const std::string message = test::error_of([&] { conv2d(x, w, Tensor(), Conv2dGeometry{}); });
  EXPECT_NE(message.find("has more than 500 elements"), std::string::npos) << message;
}

// Training mode with gradients, or (eval) the fused batch norm + SiLU's one-kernel inference, which runs
// without gradients (with them, eval mode is ordinary ops).
Results batch_norm_on_gpu(bool silu, bool training, const Tensor& x_cpu, const Tensor& upstream_cpu, DType dtype,
                          MemoryFormat format) {
  const Device gpu = Device::cuda(0);
  const int64_t c = x_cpu.size(1);
  manual_seed(5);
  Tensor gamma = add(rand({c}), 0.5).to(gpu), beta = randn({c}).to(gpu);
  const Tensor running_mean = randn({c}).to(gpu), running_var = add(rand({c}), 0.5).to(gpu);
  Tensor x = x_cpu.to(dtype).to(gpu).contiguous(format);
  if (!training) {
    autograd::NoGradGuard no_grad;
    return {{batch_norm_silu(x, gamma, beta, running_mean, running_var, false, 0.1, 1e-5).to(kFloat32).to_vector()}};
  }
  x.requires_grad_();
  gamma.requires_grad_();
  beta.requires_grad_();
  const Tensor y = silu ? batch_norm_silu(x, gamma, beta, running_mean, running_var, true, 0.1, 1e-5)
                        : batch_norm(x, gamma, beta, running_mean, running_var, true, 0.1, 1e-5);
  Results r{{y.to(kFloat32).to_vector()}};
  sum(mul(y, upstream_cpu.to(dtype).to(gpu))).backward();
  r.values.push_back(x.grad().to(kFloat32).to_vector());
  r.values.push_back(gamma.grad().to_vector());
  r.values.push_back(beta.grad().to_vector());
  r.values.push_back(running_mean.to_vector());
  r.values.push_back(running_var.to_vector());
  return r;
}

// effnet's batch-norm kernels launch their elementwise passes per chunk of whole images (a float32 batch
// norm past the limit leaves cuDNN for them, whose descriptors would refuse it); the statistics still cover
// the whole batch.
TEST_F(CudaChunks, BatchNormInChunksIsOneCallToRounding) {
  manual_seed(22);
  const Tensor x = add(mul(randn({7, 6, 5, 5}), 2.0), 1.0), upstream = randn({7, 6, 5, 5});
  for (bool silu : {false, true}) {
    for (bool training : {true, false}) {
      if (!silu && !training) continue;  // ordinary ops (addcmul): nothing of batch norm's own to chunk
      for (DType dtype : {kFloat32, kBFloat16}) {
        for (MemoryFormat format : kFormats) {
          SCOPED_TRACE(name_of(dtype, format) + (silu ? " with SiLU" : "") + (training ? " training" : " eval"));
          cuda::set_max_elements_per_call(0);
          const Results whole = batch_norm_on_gpu(silu, training, x, upstream, dtype, format);
          cuda::set_max_elements_per_call(400);  // 150 per image: chunks of 2, 2, 2 and 1 images
          const Results chunked = batch_norm_on_gpu(silu, training, x, upstream, dtype, format);
          ASSERT_EQ(chunked.values.size(), whole.values.size());
          for (size_t k = 0; k < whole.values.size(); ++k) {
            EXPECT_LT(relative_error(chunked.values[k], whole.values[k]), tolerance(dtype)) << "result " << k;
          }
        }
      }
    }
  }
}

// A real operand of more than 2^31 elements: bfloat16 channels-last, 4,097 images of 32 x 128 x 128. The
// last image's convolution and fused batch norm + SiLU equal the same image's alone (with the batch's
// statistics) to rounding. About 17 GB of device memory; skipped with a reason where there is not 24 GB free.
TEST_F(CudaChunks, OperandsOfMoreThan2To31ElementsRunInChunks) {
  empty_cache(Device::cuda(0));  // what earlier tests left cached counts as used
  size_t free_bytes = 0, total_bytes = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total_bytes), cudaSuccess);
  if (free_bytes < (size_t{24} << 30)) {
    GTEST_SKIP() << "needs 24 GiB of free device memory, has " << (free_bytes >> 20) << " MiB";
  }
  const Device gpu = Device::cuda(0);
  const int64_t n = 4097, c = 32, h = 128, w = 128;  // 2^31 + 2^19 elements
  manual_seed(23);
  const Tensor image = add(randn({1, c, h, w}), 1.0).to(kBFloat16).to(gpu).contiguous(MemoryFormat::ChannelsLast);
  Tensor x = empty({n, c, h, w}, TensorOptions(kBFloat16, gpu), MemoryFormat::ChannelsLast);
  x.copy_(image.expand({n, c, h, w}));
  x.slice(0, n - 1, n).copy_(mul(image, 2.0));  // the last chunk's offset matters: its image differs
  const Tensor weight = mul(randn({c, c, 1, 1}), 0.2).to(kBFloat16).to(gpu);
  const Tensor y = conv2d(x, weight, Tensor(), Conv2dGeometry{});
  ASSERT_GT(y.numel(), int64_t{1} << 31);
  const Tensor first = y.slice(0, 0, 1), last = y.slice(0, n - 1, n);
  const Tensor expected_first = conv2d(image, weight, Tensor(), Conv2dGeometry{});
  const Tensor expected_last = conv2d(mul(image, 2.0), weight, Tensor(), Conv2dGeometry{});
  EXPECT_LT(relative_error(first.to(kFloat32).to_vector(), expected_first.to(kFloat32).to_vector()), 1e-2);
  EXPECT_LT(relative_error(last.to(kFloat32).to_vector(), expected_last.to(kFloat32).to_vector()), 1e-2);
  // Batch norm + SiLU in training mode over the whole batch (momentum 1: the running statistics become the
  // batch's), then the last image alone in eval mode by those statistics.
  const Tensor gamma = ones({c}).to(gpu), beta = zeros({c}).to(gpu);
  const Tensor running_mean = zeros({c}).to(gpu), running_var = ones({c}).to(gpu);
  const Tensor z = batch_norm_silu(y, gamma, beta, running_mean, running_var, true, 1.0, 1e-5);
  // The statistics of every chunk: the images' mean per channel, summed in float32 by the reduction.
  const Tensor channel_means = mul(add(mul(sum(expected_first.to(kFloat32), {0, 2, 3}), static_cast<double>(n - 1)),
                                       sum(expected_last.to(kFloat32), {0, 2, 3})),
                                   1.0 / static_cast<double>(n * h * w));
  EXPECT_LT(relative_error(running_mean.to_vector(), channel_means.to_vector()), 1e-3);
  const Tensor z_last = batch_norm_silu(last, gamma, beta, running_mean, running_var, false, 0.0, 1e-5);
  EXPECT_LT(relative_error(z.slice(0, n - 1, n).to(kFloat32).to_vector(), z_last.to(kFloat32).to_vector()), 1e-2);
}

#endif  // EFFNET_WITH_CUDA: a CPU-only build has no chunked CUDA calls to test

}  // namespace
}  // namespace effnet
