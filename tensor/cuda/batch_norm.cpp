// Batch normalization in training mode through cuDNN, forward and backward, in CUDNN_BATCHNORM_SPATIAL mode:
// statistics per channel over (N, H, W), NCHW or channels-last (an NHWC descriptor; where cuDNN refuses
// one, on row-major copies). The math is in tensor/backend.h.
//
//   N batch   C channels   H, W height, width   M = N H W values per channel
//   per-channel tensors (gamma, beta, running and saved statistics, their gradients): [C], x's dtype
//
// cuDNN's conventions, which are effnet's contract:
//   - exponentialAverageFactor is the momentum: running = (1 - momentum) running + momentum batch;
//   - the running variance moves toward the unbiased batch variance var M / (M - 1), while y is normalized
//     with the biased var (the header says only "moving average of variance[x]"; the unbiased estimate is
//     what cuDNN computes, and what PyTorch's and MXNet's cuDNN paths rely on);
//   - resultSaveInvVariance is, despite its name, 1 / sqrt(var + eps): the inverse standard deviation,
//     which the backward reads back as such;
//   - the per-channel descriptor (cudnnDeriveBNTensorDescriptor, 1 x C x 1 x 1) is double for double x and
//     float otherwise, so float32 and float64 keep one dtype throughout.
// CUDNN_BATCHNORM_SPATIAL_PERSISTENT is faster but can overflow on some inputs, hence plain SPATIAL.
// float16 / bfloat16 inputs (mixed precision, float32 per-channel tensors) and batch norm fused with an
// activation go to effnet's own kernels, batch_norm_kernels.cu.
#include <initializer_list>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/cudnn.h"
#include "tensor/cuda/kernels.h"
#include "tensor/ops.h"

namespace effnet::cuda {
namespace {

constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;

// The descriptors of x (shared by y, grad_y, grad_x) and of the per-channel tensors.
struct Descriptors {
  TensorDescriptor data, channel;
  bool is_double = false;

  Descriptors(const Tensor& x, const char* op) : is_double(x.dtype() == kFloat64) {
    // cuDNN's legacy descriptors hold int sizes and strides, so x must index in 32 bits (larger tensors go
    // to effnet's kernels: use_own_kernels; tests lower the limit to send small ones there).
    EFFNET_CHECK(x.numel() <= max_elements_per_call(), op, ": ", x.str(), " has more than ",
                 max_elements_per_call(), " elements, more than cuDNN's batch norm takes");
    const bool channels_last = x.suggest_memory_format() == MemoryFormat::ChannelsLast;
    EFFNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(data.get(), channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                                  is_double ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT,
                                                  static_cast<int>(x.size(0)), static_cast<int>(x.size(1)),
                                                  static_cast<int>(x.size(2)), static_cast<int>(x.size(3))));
    EFFNET_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(channel.get(), data.get(), kMode));
  }

  const void* one() const { return is_double ? static_cast<const void*>(&kOneD) : &kOneF; }
  const void* zero() const { return is_double ? static_cast<const void*>(&kZeroD) : &kZeroF; }
};

// x and the tensors of its shape are 4-D and dense in one memory format; the per-channel ones [C]; all of
// one floating dtype.
void check_operands(const char* op, const Tensor& x, std::initializer_list<const Tensor*> like_x,
                    std::initializer_list<const Tensor*> per_channel) {
  const MemoryFormat format = x.suggest_memory_format();
  EFFNET_CHECK(x.dim() == 4 && x.is_contiguous(format) && (x.dtype() == kFloat32 || x.dtype() == kFloat64), op,
               ": expected a dense float32 or float64 [N, C, H, W] input (row-major or channels-last), got ",
               x.str());
  for (const Tensor* t : like_x) {
    EFFNET_CHECK(t->shape() == x.shape() && t->is_contiguous(format) && t->dtype() == x.dtype(), op, ": ",
                 t->str(), " does not match the input ", x.str(), " (dtype and memory format)");
  }
  for (const Tensor* t : per_channel) {
    EFFNET_CHECK(t->shape() == Shape{x.size(1)} && t->is_contiguous() && t->dtype() == x.dtype(), op, ": ",
                 t->str(), " should be a contiguous [", x.size(1), "] ", x.dtype(), " tensor");
  }
}

// cuDNN refused a channels-last x (its NHWC batch norm may not cover every dtype): the caller computes on
// row-major copies instead.
bool unsupported_layout(cudnnStatus_t status, const Tensor& x) {
  return (status == CUDNN_STATUS_NOT_SUPPORTED || status == CUDNN_STATUS_BAD_PARAM) &&
         x.suggest_memory_format() == MemoryFormat::ChannelsLast;
}

// effnet's kernels take what cuDNN's legacy batch norm cannot: 16-bit activations, a fused activation, and
// tensors past its 32-bit indexing (a large batch; effnet's kernels work through them in chunks).
bool use_own_kernels(const Tensor& x, Activation act) {
  return is_16bit(x.dtype()) || act != Activation::None || x.numel() > max_elements_per_call();
}

void zero(const Tensor& t, cudaStream_t stream) {
  EFFNET_CUDA_CHECK(
      cudaMemsetAsync(t.data_ptr(), 0, static_cast<size_t>(t.numel()) * element_size(t.dtype()), stream));
}

}  // namespace

void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                      const Tensor& running_var, double momentum, double eps, Activation act, const Tensor& y,
                      const Tensor& save_mean, const Tensor& save_invstd) {
  if (use_own_kernels(x, act)) {
    own_batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps, act, y, save_mean, save_invstd);
    return;
  }
  const char* op = "cuda batch_norm";
  check_operands(op, x, {&y}, {&gamma, &beta, &running_mean, &running_var, &save_mean, &save_invstd});
  EFFNET_CHECK(eps >= CUDNN_BN_MIN_EPSILON, op, ": eps = ", eps, " is below cuDNN's minimum of ",
               CUDNN_BN_MIN_EPSILON);
  if (x.size(1) == 0) return;

  const int device = x.device().index;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  // No values (M = 0), no statistics: the saved ones are zeroed and the running ones kept (cuDNN refuses
  // zero sizes).
  if (x.numel() == 0) {
    zero(save_mean, ctx.stream);
    zero(save_invstd, ctx.stream);
    return;
  }
  const Descriptors desc(x, op);
  const cudnnStatus_t status = cudnnBatchNormalizationForwardTraining(
      ctx.cudnn, kMode, desc.one(), desc.zero(), desc.data.get(), x.data_ptr(), desc.data.get(), y.data_ptr(),
      desc.channel.get(), gamma.data_ptr(), beta.data_ptr(), momentum, running_mean.data_ptr(),
      running_var.data_ptr(), eps, save_mean.data_ptr(), save_invstd.data_ptr());
  if (unsupported_layout(status, x)) {  // on row-major copies, the result written back channels-last
    const Tensor y_rows = empty(y.shape(), TensorOptions(y.dtype(), y.device()));
    batch_norm_train(x.contiguous(), gamma, beta, running_mean, running_var, momentum, eps, act, y_rows,
                     save_mean, save_invstd);
    copy(y, y_rows);
    return;
  }
  EFFNET_CUDNN_CHECK(status);
}

void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& save_mean, const Tensor& save_invstd, double eps, Activation act,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta) {
  if (use_own_kernels(x, act)) {
    own_batch_norm_backward(grad_y, x, gamma, beta, save_mean, save_invstd, act, grad_x, grad_gamma, grad_beta);
    return;
  }
  const char* op = "cuda batch_norm_backward";
  check_operands(op, x, {&grad_y, &grad_x}, {&gamma, &save_mean, &save_invstd, &grad_gamma, &grad_beta});
  if (x.size(1) == 0) return;

  const int device = x.device().index;
  Context& ctx = context(device);
  DeviceGuard guard(device);
  // Sums over no values.
  if (x.numel() == 0) {
    zero(grad_gamma, ctx.stream);
    zero(grad_beta, ctx.stream);
    return;
  }
  const Descriptors desc(x, op);
  // Data and parameter gradients both overwrite their outputs (alpha 1, beta 0).
  const cudnnStatus_t status = cudnnBatchNormalizationBackward(
      ctx.cudnn, kMode, desc.one(), desc.zero(), desc.one(), desc.zero(), desc.data.get(), x.data_ptr(),
      desc.data.get(), grad_y.data_ptr(), desc.data.get(), grad_x.data_ptr(), desc.channel.get(),
      gamma.data_ptr(), grad_gamma.data_ptr(), grad_beta.data_ptr(), eps, save_mean.data_ptr(),
      save_invstd.data_ptr());
  if (unsupported_layout(status, x)) {
    const Tensor grad_x_rows = empty(grad_x.shape(), TensorOptions(grad_x.dtype(), grad_x.device()));
    batch_norm_backward(grad_y.contiguous(), x.contiguous(), gamma, beta, save_mean, save_invstd, eps, act,
                        grad_x_rows, grad_gamma, grad_beta);
    copy(grad_x, grad_x_rows);
    return;
  }
  EFFNET_CUDNN_CHECK(status);
}

}  // namespace effnet::cuda
